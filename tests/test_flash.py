"""patchcam.targets.flash: the fit check and the messages for whatever is missing (no hardware, no
Mbed build: tools, USB and files are faked)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from patchcam.targets import flash, usb
from patchcam.targets.boards import BOARD_SPECS, BoardSpec

NANO = BOARD_SPECS["nano33ble_sense"]
DISCO = BOARD_SPECS["disco_f746ng"]


def facts(arena: int, params: int = 100_000, w: int = 160, h: int = 128) -> flash.ModelFacts:
    return flash.ModelFacts("m", arena, params, w, h, 3)


def test_board_table():
    assert DISCO.sram_bytes == 320 * 1024 and DISCO.flash_bytes == 1024 * 1024
    assert NANO.sram_bytes == 256 * 1024
    assert NANO.flash_bytes == 960 * 1024  # after the 64 kB Arduino bootloader
    assert BOARD_SPECS["qemu_m7"].virtual
    for b in (DISCO, NANO):
        assert b.camera_frame_bytes == 160 * 120 * 2 and b.mbed_target


def test_frame_buffer_is_the_larger_of_camera_and_model_input():
    assert flash.frame_buffer_bytes(NANO, facts(0, w=96, h=96)) == 38_400  # camera frame
    assert flash.frame_buffer_bytes(NANO, facts(0, w=160, h=128)) == 61_440  # RGB888 input


def test_fits():
    fit = flash.fit_check("vww", DISCO, facts(34_104, w=96, h=96))
    assert fit.fits
    assert fit.ram_bytes == 34_104 + 38_400 + DISCO.firmware_ram_bytes
    assert fit.message().startswith("vww fits disco_f746ng: RAM ")


def test_does_not_fit_names_every_number_on_one_line():
    board = BoardSpec("b", "t", "MCU-X", 1, sram_bytes=200_000, flash_bytes=500_000, camera="c",
                      camera_width=160, camera_height=120, firmware_ram_bytes=10_000,
                      firmware_flash_bytes=50_000)
    fit = flash.fit_check("person_detect", board, facts(225_280, params=158_732))
    assert not fit.fits
    msg = fit.message()
    assert "\n" not in msg
    assert msg == ("person_detect does not fit b (MCU-X): RAM 296,720 B = arena 225,280 + "
                   "frame buffer 61,440 + firmware 10,000 vs SRAM 200,000 (over by 96,720)")
    fit = flash.fit_check("big", board, facts(1000, params=600_000))
    assert "flash 650,000 B = parameters 600,000 + firmware 50,000 vs 500,000 (over by " \
           "150,000)" in fit.message()


def test_read_model_facts(tmp_path: Path):
    (tmp_path / "model.h").write_text(
        '#define MODEL_NAME "x"\n#define MODEL_INPUT_H 96\n#define MODEL_INPUT_W 80\n'
        "#define MODEL_INPUT_C 3\n#define MODEL_ARENA_BYTES 34104 /* peak */\n"
        "#define MODEL_PARAM_BYTES 123UL /* flash */\n")
    f = flash.read_model_facts(tmp_path)
    assert (f.name, f.arena_bytes, f.param_bytes, f.input_w, f.input_h) == ("x", 34104, 123, 80,
                                                                              96)
    with pytest.raises(flash.FlashError, match="no model.h"):
        flash.read_model_facts(tmp_path / "nowhere")


def test_fit_command_reports_and_fails(monkeypatch, capsys, tmp_path: Path):
    (tmp_path / "model.h").write_text(
        "#define MODEL_INPUT_H 128\n#define MODEL_INPUT_W 160\n#define MODEL_INPUT_C 3\n"
        "#define MODEL_ARENA_BYTES 225280\n#define MODEL_PARAM_BYTES 158732UL\n")
    monkeypatch.setattr(flash, "model_dir_for", lambda app: (tmp_path, "a model"))
    assert flash.main(["fit", "--app", "person_detect", "--board", "nano33ble_sense"]) == 1
    out = capsys.readouterr().out
    assert "person_detect does not fit nano33ble_sense (nRF52840" in out
    assert flash.main(["fit", "--app", "person_detect", "--board", "disco_f746ng"]) == 0


# ---- missing things -----------------------------------------------------------------------
def test_missing_toolchain(monkeypatch):
    monkeypatch.setattr(flash.shutil, "which", lambda t: None if t == "ninja" else f"/bin/{t}")
    with pytest.raises(flash.FlashError, match="missing ninja: sudo apt-get install"):
        flash.check_toolchain()


def test_missing_cxx_library(monkeypatch):
    monkeypatch.setattr(flash.shutil, "which", lambda t: f"/bin/{t}")
    monkeypatch.setattr(flash.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, stdout="libstdc++.a\n" if "g++" in cmd[0] else "cmake version 3.25.1\n"))
    with pytest.raises(flash.FlashError, match="libstdc\\+\\+-arm-none-eabi-newlib"):
        flash.check_toolchain()


def test_old_cmake(monkeypatch):
    monkeypatch.setattr(flash.shutil, "which", lambda t: f"/bin/{t}")
    monkeypatch.setattr(flash.subprocess, "run", lambda cmd, **kw: subprocess.CompletedProcess(
        cmd, 0, stdout="/x/libstdc++.a\n" if "g++" in cmd[0] else "cmake version 3.16.3\n"))
    with pytest.raises(flash.FlashError, match="cmake 3.19 or newer needed \\(found 3.16\\)"):
        flash.check_toolchain()


def test_bad_mbed_os_path(tmp_path: Path):
    with pytest.raises(flash.FlashError) as e:
        flash.resolve_mbed_os(str(tmp_path))
    assert "not an Mbed OS Community Edition tree: git clone https://github.com/mbed-ce/" \
           "mbed-os" in str(e.value)
    assert flash.MBED_OS_PIN in str(e.value)


def test_mbed_os_path_ok(tmp_path: Path):
    (tmp_path / "tools" / "cmake").mkdir(parents=True)
    (tmp_path / "tools" / "cmake" / "mbed_toolchain_setup.cmake").write_text("")
    assert flash.resolve_mbed_os(str(tmp_path)) == tmp_path.resolve()


def test_no_mbed_os_and_no_git(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(flash, "MBED_OS_CACHE", tmp_path / "cache")
    with pytest.raises(flash.FlashError, match="set MBED_OS_PATH=DIR, or run git clone"):
        flash.resolve_mbed_os(None, clone=False)
    monkeypatch.setattr(flash.shutil, "which", lambda t: None)
    with pytest.raises(flash.FlashError, match="no git to fetch it"):
        flash.resolve_mbed_os(None)


def test_unknown_board():
    with pytest.raises(flash.FlashError, match="choose from qemu_m7, disco_f746ng, "
                                               "nano33ble_sense, openmv_h7"):
        flash.board_spec("uno")


def test_virtual_board_points_to_the_demo(capsys):
    assert flash.main(["flash", "--app", "vww", "--board", "qemu_m7"]) == 0
    assert "virtual board: there is nothing to flash" in capsys.readouterr().out


def test_help_teaches(capsys):
    with pytest.raises(SystemExit) as e:
        flash.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert "make flash APP=person_detect BOARD=disco_f746ng" in out and "docs/boards.md" in out


# ---- uploading ----------------------------------------------------------------------------
def image(tmp_path: Path, board: str) -> flash.Image:
    b = tmp_path / "vww.bin"
    b.write_bytes(b"\x00" * 16)
    return flash.Image("vww", board, tmp_path / "vww.elf", b, 16, 16)


def stlink(monkeypatch, present: bool = True) -> None:
    port = usb.Port("/dev/ttyACM0", 0x0483, 0x374B, "disco_f746ng", "serial", "ST-LINK")
    monkeypatch.setattr(flash.usb, "board_ports",
                        lambda board=None, role="serial", comports=None:
                        [port] if present and board == "disco_f746ng" and role == "serial"
                        else [])


def test_disco_not_plugged_in(monkeypatch, tmp_path: Path):
    stlink(monkeypatch, present=False)
    monkeypatch.setattr(flash.usb, "find_drive", lambda label, marker, volumes=None: None)
    with pytest.raises(flash.FlashError, match="no ST-LINK on USB: plug the DISCO"):
        flash.flash_disco(image(tmp_path, "disco_f746ng"), None, None)


def test_disco_drive_copy(monkeypatch, tmp_path: Path):
    drive = tmp_path / "DIS_F746NG"
    drive.mkdir()
    monkeypatch.setattr(flash.usb, "mounted_volumes", lambda: [("DIS_F746NG", drive)])
    flash.flash_disco(image(tmp_path, "disco_f746ng"), None, None)
    assert (drive / "vww.bin").read_bytes() == b"\x00" * 16


def test_disco_drive_given(tmp_path: Path, capsys):
    """DRIVE=dir: any folder is the drive (e.g. Windows' E:\\); no USB scan needed."""
    drive = tmp_path / "E"
    drive.mkdir()
    flash.flash_disco(image(tmp_path, "disco_f746ng"), "drive", None, drive=drive)
    assert (drive / "vww.bin").read_bytes() == b"\x00" * 16
    assert "make view APP=vww (it finds the board's serial port)" in capsys.readouterr().out
    with pytest.raises(flash.FlashError, match="is not a folder"):
        flash.flash_disco(image(tmp_path, "disco_f746ng"), "drive", None,
                          drive=tmp_path / "missing")


def test_disco_no_drive_no_flasher(monkeypatch, tmp_path: Path):
    stlink(monkeypatch)
    monkeypatch.setattr(flash.usb, "find_drive", lambda label, marker, volumes=None: None)
    monkeypatch.setattr(flash.shutil, "which", lambda t: None)
    with pytest.raises(flash.FlashError) as e:
        flash.flash_disco(image(tmp_path, "disco_f746ng"), None, None)
    assert "DIS_F746NG is not mounted and no flasher is installed" in str(e.value)
    assert "OPENOCD: sudo apt-get install --no-install-recommends openocd" in str(e.value)
    with pytest.raises(flash.FlashError, match="upload method PYOCD needs pyocd: pip install"):
        flash.flash_disco(image(tmp_path, "disco_f746ng"), "pyocd", None)
    with pytest.raises(flash.FlashError, match="DIS_F746NG is not mounted: mount it"):
        flash.flash_disco(image(tmp_path, "disco_f746ng"), "drive", None)


def test_method_is_checked_before_building(monkeypatch, capsys):
    monkeypatch.setattr(flash, "build", lambda *a, **k: pytest.fail("must not build"))
    assert flash.main(["flash", "--app", "vww", "--board", "disco_f746ng", "--method",
                       "jlink"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("flash: METHOD=jlink is not a way to flash disco_f746ng: choose "
                          "drive (copy to the ST-LINK drive) or STM32CUBE, OPENOCD, PYOCD, "
                          "STLINK")
    assert err.count("\n") == 1
    assert flash.main(["flash", "--app", "vww", "--board", "nano33ble_sense", "--method",
                       "drive"]) == 2
    assert "does not apply to nano33ble_sense" in capsys.readouterr().err
    board = BOARD_SPECS["disco_f746ng"]
    assert flash.check_method(board, "pyocd") == "PYOCD"
    assert flash.check_method(board, "Drive") == "drive"
    assert flash.check_method(board, None) is None


def test_nano_without_bossac(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(flash, "find_bossac", lambda: None)
    with pytest.raises(flash.FlashError, match="bossac not found: install the Arduino IDE"):
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), None)


def test_bossac_from_the_arduino_ide_on_each_system(monkeypatch, tmp_path: Path):
    for home in (".arduino15", "Library/Arduino15"):
        exe = tmp_path / home / "packages/arduino/tools/bossac/1.9.1-arduino2/bossac"
        exe.parent.mkdir(parents=True)
        exe.write_text("")
    win = tmp_path / "AppData/Arduino15/packages/arduino/tools/bossac/1.9.1/bossac.exe"
    win.parent.mkdir(parents=True)
    win.write_text("")
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.setenv("LOCALAPPDATA", str(tmp_path / "AppData"))
    found = flash.bossac_candidates()
    assert len(found) == 3 and found[-1] == str(win)


def nano_ports(*ports: tuple[str, int]):
    """list_ports stand-in: (device, product id) of Arduino ports."""
    return lambda: [fake_port(d, 0x2341, pid) for d, pid in ports]


def fake_port(device: str, vid: int | None, pid: int | None, serial_number: str = ""):
    from serial.tools.list_ports_common import ListPortInfo
    info = ListPortInfo(device, skip_link_detection=True)
    info.vid, info.pid, info.serial_number = vid, pid, serial_number
    return info


def test_nano_not_in_bootloader(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(flash, "find_bossac", lambda: "/bin/bossac")
    monkeypatch.setattr(flash.usb, "_comports", nano_ports(("/dev/ttyACM0", 0x805A)))  # the app
    with pytest.raises(flash.FlashError, match="double-tap its reset button"):
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), None)


def test_nano_port_permission(monkeypatch, tmp_path: Path):
    port = tmp_path / "ttyACM0"
    port.write_text("")
    monkeypatch.setattr(flash, "find_bossac", lambda: "/bin/bossac")
    monkeypatch.setattr(flash.os, "access", lambda p, mode: False)
    with pytest.raises(flash.FlashError, match="no permission to open .*usermod -aG dialout"):
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), str(port))


def test_nano_missing_port(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(flash, "find_bossac", lambda: "/bin/bossac")
    monkeypatch.setattr(flash.usb, "_comports", lambda: [])
    with pytest.raises(flash.FlashError, match="does not exist: is the board plugged in"):
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), str(tmp_path / "ttyACM9"))


def test_nano_runs_bossac_on_the_bootloader_port(monkeypatch, tmp_path: Path):
    calls = []
    monkeypatch.setattr(flash, "find_bossac", lambda: "/bin/bossac")
    monkeypatch.setattr(flash, "check_port_access", lambda port: None)
    monkeypatch.setattr(flash.usb, "_comports", nano_ports(("/dev/ttyACM0", 0x805A),
                                                           ("/dev/ttyACM1", 0x005A)))
    monkeypatch.setattr(flash.subprocess, "run",
                        lambda cmd, **kw: calls.append(cmd) or subprocess.CompletedProcess(cmd, 0))
    flash.flash_nano(image(tmp_path, "nano33ble_sense"), None)
    assert calls[0][0] == "/bin/bossac" and "--port=ttyACM1" in calls[0]
    assert calls[0][-3:] == ["--write", str(tmp_path / "vww.bin"), "--reset"]
    # macOS and Windows names go to bossac as they are (without /dev/)
    for device, name in (("/dev/cu.usbmodem1101", "cu.usbmodem1101"), ("COM5", "COM5")):
        calls.clear()
        monkeypatch.setattr(flash.usb, "_comports", nano_ports((device, 0x005A)))
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), None)
        assert f"--port={name}" in calls[0]


def test_two_nano_bootloaders_need_a_port(monkeypatch, tmp_path: Path):
    monkeypatch.setattr(flash, "find_bossac", lambda: "/bin/bossac")
    monkeypatch.setattr(flash.usb, "_comports", nano_ports(("COM4", 0x005A), ("COM7", 0x005A)))
    with pytest.raises(flash.FlashError, match="several Nano bootloaders on USB: COM4 .*COM7"):
        flash.flash_nano(image(tmp_path, "nano33ble_sense"), None)


# ---- OpenMV: make openmv builds, make flash copies ------------------------------------------
def test_openmv_build_points_to_make_openmv(capsys):
    assert flash.main(["build", "--app", "vww", "--board", "openmv_h7"]) == 2
    err = capsys.readouterr().err
    assert "openmv_h7 is not built with Mbed: make openmv APP=vww" in err
    assert "no board" not in err


def test_openmv_flash_copies_the_drive_folder(monkeypatch, tmp_path: Path, capsys):
    folder = tmp_path / "build" / "openmv" / "vww" / "drive"
    folder.mkdir(parents=True)
    for f in ("main.py", "pcmodel.mpy", "pcapp.py"):
        (folder / f).write_text(f)
    camera = tmp_path / "camera"
    camera.mkdir()
    (camera / ".openmv_disk").write_text("")
    monkeypatch.setattr(flash, "REPO", tmp_path)
    monkeypatch.setattr(flash.usb, "mounted_volumes", lambda: [("NO NAME", camera)])
    assert flash.main(["flash", "--app", "vww", "--board", "openmv_h7"]) == 0
    assert sorted(p.name for p in camera.iterdir()) == [".openmv_disk", "main.py",
                                                         "pcapp.py", "pcmodel.mpy"]
    assert (camera / "pcmodel.mpy").read_text() == "pcmodel.mpy"
    assert "copying 3 files" in capsys.readouterr().out
    # no camera drive: one line with what to do
    monkeypatch.setattr(flash.usb, "mounted_volumes", lambda: [])
    assert flash.main(["flash", "--app", "vww", "--board", "openmv_h7"]) == 2
    assert "OpenMV Cam's USB drive is not mounted" in capsys.readouterr().err
    # nothing built yet, and no prebuilt folder (release/ has them: test_release.py)
    from patchcam.targets import release
    monkeypatch.setattr(release, "RELEASE", tmp_path / "release")
    assert flash.main(["flash", "--app", "person_detect", "--board", "openmv_h7"]) == 2
    assert "make openmv APP=person_detect" in capsys.readouterr().err


def test_build_stops_before_compiling_when_it_does_not_fit(monkeypatch, tmp_path: Path):
    (tmp_path / "model.h").write_text(
        "#define MODEL_INPUT_H 128\n#define MODEL_INPUT_W 160\n#define MODEL_INPUT_C 3\n"
        "#define MODEL_ARENA_BYTES 300000\n#define MODEL_PARAM_BYTES 1000UL\n")
    monkeypatch.setattr(flash, "model_dir_for", lambda app: (tmp_path, "a model"))
    monkeypatch.setattr(flash, "check_toolchain", lambda: pytest.fail("must not get this far"))
    with pytest.raises(flash.FlashError, match="does not fit nano33ble_sense"):
        flash.build("big", NANO, None)


def test_image_sizes_counts_flash_ram_and_the_stack_once(monkeypatch, tmp_path: Path):
    size_a = {  # arm-none-eabi-size -A of an STM32 image (stack unnamed) and an nRF one
        "stm": ".text 1000 134217728\n.ARM.exidx 8 134218728\n.data 40 536870912\n"
               ".bss 500 536870952\n.heap 9000 536871452\n.debug_info 777 0\n",
        "nrf": ".text 1000 65536\n.data 40 536870912\n.bss 500 536870952\n"
               ".heap 9000 536871452\n.stack 256 537124864\n.comment 9 0\n"}
    nm = "2004e000 A __StackLimit\n20050000 B __StackTop\n"  # 8 kB

    def run(kind):
        def fake(cmd, **kw):
            out = size_a[kind] if cmd[0] == "arm-none-eabi-size" else nm
            return subprocess.CompletedProcess(cmd, 0, stdout=f"x :\nsection size addr\n{out}")
        return fake

    monkeypatch.setattr(flash.subprocess, "run", run("stm"))
    assert flash.image_sizes(tmp_path / "a.elf") == (1048, 540 + 8192)
    monkeypatch.setattr(flash.subprocess, "run", run("nrf"))
    assert flash.image_sizes(tmp_path / "a.elf") == (1040, 540 + 256)


def test_a_model_with_its_input_outside_the_arena_needs_no_input_buffer():
    """vww's schedule reads its input window by window from outside the arena
    (MODEL_FUSED_INPUT): the app loop preprocesses each window from the frame buffer, so the
    fit check counts the arena, the frame buffer and the firmware, and no model input."""
    gen = Path(__file__).resolve().parents[1] / "apps" / "vww" / "generated"
    assert "#define MODEL_FUSED_INPUT 1" in (gen / "model.h").read_text()
    f = flash.read_model_facts(gen)
    fit = flash.fit_check("vww", DISCO, f)
    assert fit.ram_bytes == f.arena_bytes + 38_400 + DISCO.firmware_ram_bytes
    assert "model input" not in fit.message()


def test_a_cached_mbed_tree_off_the_pin_is_refused(monkeypatch, tmp_path: Path):
    cache = tmp_path / "cache"
    (cache / "tools" / "cmake").mkdir(parents=True)
    (cache / "tools" / "cmake" / "mbed_toolchain_setup.cmake").write_text("")
    monkeypatch.setattr(flash, "MBED_OS_CACHE", cache)
    with pytest.raises(flash.FlashError, match="holds no git checkout, not Mbed OS CE at the "
                                               "pinned 87a55e22cbf4: remove it"):
        flash.resolve_mbed_os(None)
    monkeypatch.setattr(flash.dl, "git_head", lambda tree: flash.MBED_OS_PIN)
    assert flash.resolve_mbed_os(None) == cache
