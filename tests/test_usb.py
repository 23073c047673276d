"""patchcam.targets.usb: boards found by USB ID through pyserial's list_ports (stand-ins with
the IDs each board shows on Linux, macOS and Windows), and USB drives found by name or by the
file they hold (fake drive folders)."""

from __future__ import annotations

from pathlib import Path

import pytest
from serial.tools.list_ports_common import ListPortInfo

from patchcam.targets import usb


def port(device: str, vid: int | None, pid: int | None, serial_number: str | None = None
         ) -> ListPortInfo:
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number
    return info


# what each board shows, as list_ports reports it on each system
DISCO = port("/dev/ttyACM0", 0x0483, 0x374B, "066DFF505")           # ST-LINK/V2-1, Linux
NANO = port("/dev/cu.usbmodem14101", 0x2341, 0x805A)               # Nano 33 BLE app, macOS
NANO_BOOT = port("COM9", 0x2341, 0x005A)                           # its bootloader, Windows
OPENMV = port("COM4", 0x37C5, 0x1204, "3A0E")                     # OpenMV Cam H7, Windows
OPENMV_OLD = port("/dev/ttyACM2", 0x1209, 0xABD1)                  # firmware before 4.5
OTHERS = [port("/dev/ttyS0", None, None), port("/dev/ttyUSB0", 0x10C4, 0xEA60)]


def ports(*infos: ListPortInfo):
    return lambda: [*infos, *OTHERS]


@pytest.mark.parametrize("info,board", [(DISCO, "disco_f746ng"), (NANO, "nano33ble_sense"),
                                        (OPENMV, "openmv_h7"), (OPENMV_OLD, "openmv_h7")])
def test_each_board_is_found_by_its_usb_id(info: ListPortInfo, board: str):
    found = usb.board_ports(comports=ports(info))
    assert [(p.device, p.board, p.role) for p in found] == [(info.device, board, "serial")]
    assert usb.pick_port(comports=ports(info)).device == info.device
    assert usb.pick_port(board, comports=ports(info)).device == info.device
    with pytest.raises(usb.PortError, match="no board found on USB"):
        usb.pick_port("qemu_m7", comports=ports(info))


def test_describe_names_device_ids_and_serial_number():
    p = usb.pick_port(comports=ports(DISCO))
    assert p.describe() == "/dev/ttyACM0 (ST-LINK 0483:374b, serial number 066DFF505)"


def test_the_bootloader_is_not_a_viewer_port():
    assert usb.board_ports(comports=ports(NANO_BOOT)) == []
    boot = usb.board_ports("nano33ble_sense", "bootloader", comports=ports(NANO_BOOT, NANO))
    assert [p.device for p in boot] == ["COM9"]
    with pytest.raises(usb.PortError) as e:
        usb.pick_port(comports=ports(NANO_BOOT))
    assert "COM9 (Arduino Nano 33 BLE bootloader 2341:005a) is in its bootloader: press " \
           "reset once" in str(e.value)


def test_none_found_lists_what_was_looked_for_and_the_ports_here():
    with pytest.raises(usb.PortError) as e:
        usb.pick_port(comports=ports())
    msg = str(e.value)
    assert "\n" not in msg
    assert "ST-LINK 0483:374b/3752/374e/374f/3753/3754 (disco_f746ng)" in msg
    assert "Arduino Nano 33 BLE 2341:805a (nano33ble_sense)" in msg
    assert "OpenMV Cam 37c5:* (openmv_h7), OpenMV Cam 1209:abd1 (openmv_h7)" in msg
    assert "serial ports here: /dev/ttyS0, /dev/ttyUSB0" in msg
    assert msg.endswith("make view PORT=DEVICE; no board? make demo")
    with pytest.raises(usb.PortError, match="no serial ports here"):
        usb.pick_port(comports=lambda: [])


def test_several_boards_are_listed_not_guessed():
    with pytest.raises(usb.PortError) as e:
        usb.pick_port(comports=ports(DISCO, OPENMV, NANO))
    msg = str(e.value)
    assert msg.startswith("several boards on USB: /dev/cu.usbmodem14101 (Arduino Nano 33 BLE "
                          "2341:805a); /dev/ttyACM0 (ST-LINK 0483:374b, serial number "
                          "066DFF505); COM4 (OpenMV Cam 37c5:1204, serial number 3A0E).")
    assert "make view PORT=DEVICE" in msg
    # one board of the kind asked for is not ambiguous
    assert usb.pick_port("openmv_h7", comports=ports(DISCO, OPENMV, NANO)).device == "COM4"


def test_hostile_port_descriptions_are_skipped_or_cleaned():
    bad = [port("/dev/ttyACM7", 0x1_0483, 0x374B), port("", 0x0483, 0x374B),
           port("/dev/ttyACM8", True, 0x805A), port("/dev/ttyACM9", 0x0483, -1),
           port("/dev/tty\x1b[2JACM5", 0x2341, 0x805A, "x\ny" * 100)]
    found = usb.board_ports(comports=lambda: bad)
    assert [p.device for p in found] == ["/dev/tty?[2JACM5"]
    assert found[0].serial_number == ("x?y" * 100)[:64]


def test_unknown_vendor_products_are_not_boards():
    assert usb.board_ports(comports=lambda: [port("COM3", 0x0483, 0x5740)]) == []  # STM32 CDC
    assert usb.identify(0x37C5, 0x9204).board == "openmv_h7"


# ---- drives -------------------------------------------------------------------------------
def test_drive_by_name_wherever_it_is_mounted(tmp_path: Path):
    for base in ("media/ann", "run/media/ann", "Volumes"):
        drive = tmp_path / base / "DIS_F746NG"
        drive.mkdir(parents=True)
        (tmp_path / base / "USB STICK").mkdir()
        vols = usb.mounted_volumes("linux", bases=[str(tmp_path / base)])
        assert usb.find_drive(*usb.DISCO_DRIVE, volumes=vols) == drive
    assert usb.mount_places("darwin") == ["/Volumes"]
    assert usb.mount_places("linux", "ann")[:2] == ["/media/ann", "/run/media/ann"]


def test_drive_by_name_ignores_case_and_by_marker(tmp_path: Path):
    stick, cam = tmp_path / "stick", tmp_path / "cam"
    stick.mkdir()
    cam.mkdir()
    (cam / ".openmv_disk").write_text("")
    vols = [("dis_f746ng", stick), ("", cam)]  # Windows: E:\ with its label, F:\ without
    assert usb.find_drive(*usb.DISCO_DRIVE, volumes=vols) == stick
    assert usb.find_drive(*usb.OPENMV_DRIVE, volumes=vols) == cam
    assert usb.find_drive(*usb.OPENMV_DRIVE, volumes=[("X", stick)]) is None
    assert usb.find_drive("DIS_F746NG", None, volumes=[("DIS_F746NG", tmp_path / "gone")]) \
        is None


def test_missing_mount_places_are_skipped(tmp_path: Path):
    assert usb.mounted_volumes("linux", bases=[str(tmp_path / "none")]) == []


# ---- make view without PORT -----------------------------------------------------------------
def test_view_without_a_port_finds_the_one_board(monkeypatch, capsys):
    from patchcam.host import view
    monkeypatch.setattr(usb, "_comports", ports(OPENMV))
    assert view.find_port() == "COM4"
    assert "viewer: found openmv_h7 on COM4 (OpenMV Cam 37c5:1204" in capsys.readouterr().out
    assert view.parse_args(["--headless", "--save-dir", "x"]).port == "auto"


@pytest.mark.parametrize("found,text", [((), "viewer: no board found on USB"),
                                        ((DISCO, NANO), "viewer: several boards on USB")])
def test_view_without_a_port_stops_with_one_line(monkeypatch, tmp_path: Path, found, text):
    from patchcam.host import view
    monkeypatch.setattr(usb, "_comports", ports(*found))
    with pytest.raises(SystemExit) as e:
        view.main(["--port", "auto", "--headless", "--save-dir", str(tmp_path)])
    assert str(e.value).startswith(text) and "\n" not in str(e.value)
