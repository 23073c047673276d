"""Finding boards on USB the same way on Linux, macOS and Windows.

- Serial ports by USB vendor/product ID through pyserial's `serial.tools.list_ports` (no
  /dev/ttyACM* globs, no sysfs): the DISCO's ST-LINK, the Nano 33 BLE (its app and its
  bootloader) and the OpenMV Cam. `pick_port` is what `make view` without PORT uses: the only
  board found, or one line listing every candidate.
- A board's USB drive (the ST-LINK's `DIS_F746NG`, the OpenMV Cam's flash) by volume name or by
  a file it always holds, wherever the system mounts it: /media/$USER, /run/media/$USER,
  /media, /mnt (Linux), /Volumes (macOS), drive letters (Windows).

Nothing read from the system is trusted: a port without USB IDs, or with IDs outside 16 bits,
is skipped; a drive is only a folder that exists.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class UsbId:
    """One USB identity a board shows on the host. pid None: any product of this vendor."""
    vid: int
    pid: int | None
    board: str
    role: str  # "serial": the port the app speaks the wire protocol on; "bootloader"
    what: str

    def label(self) -> str:
        pid = "*" if self.pid is None else f"{self.pid:04x}"
        return f"{self.what} {self.vid:04x}:{pid}"


ST_VID, ARDUINO_VID, OPENMV_VID, PIDCODES_VID = 0x0483, 0x2341, 0x37C5, 0x1209
# The ST-LINK's virtual COM port: V2-1 (the DISCO-F746NG's, with and without its drive) and V3.
ST_LINK_PIDS = (0x374B, 0x3752, 0x374E, 0x374F, 0x3753, 0x3754)
USB_IDS: tuple[UsbId, ...] = (
    *(UsbId(ST_VID, p, "disco_f746ng", "serial", "ST-LINK") for p in ST_LINK_PIDS),
    # firmware/boards/nano33ble_sense: USBSerial with Arduino's IDs for the Nano 33 BLE
    UsbId(ARDUINO_VID, 0x805A, "nano33ble_sense", "serial", "Arduino Nano 33 BLE"),
    UsbId(ARDUINO_VID, 0x005A, "nano33ble_sense", "bootloader",
          "Arduino Nano 33 BLE bootloader"),
    # OpenMV LLC's vendor ID (every camera since firmware 4.5; the H7 is 37c5:1204) and the
    # pid.codes ID of older firmware
    UsbId(OPENMV_VID, None, "openmv_h7", "serial", "OpenMV Cam"),
    UsbId(PIDCODES_VID, 0xABD1, "openmv_h7", "serial", "OpenMV Cam"),
)

# The drives the boards show: (volume name, a file the drive always holds)
DISCO_DRIVE = ("DIS_F746NG", "MBED.HTM")
OPENMV_DRIVE = (None, ".openmv_disk")  # OpenMV's drive has no fixed name


class PortError(RuntimeError):
    """No board, or more than one (the message is one line and says what to do)."""


@dataclass(frozen=True)
class Port:
    device: str  # what pyserial opens: /dev/ttyACM0, /dev/cu.usbmodem1103, COM5
    vid: int
    pid: int
    board: str
    role: str
    what: str
    serial_number: str = ""

    def describe(self) -> str:
        sn = f", serial number {self.serial_number}" if self.serial_number else ""
        return f"{self.device} ({self.what} {self.vid:04x}:{self.pid:04x}{sn})"


def _comports() -> list:
    from serial.tools import list_ports
    return list(list_ports.comports())


def _u16(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) and 0 <= v <= 0xFFFF else None


def _text(v: object, limit: int = 120) -> str:
    """A printable, bounded form of a string the OS reported (device names, serial numbers)."""
    if not isinstance(v, str):
        return ""
    s = "".join(c if c.isprintable() else "?" for c in v)
    return s[:limit]


def identify(vid: int, pid: int) -> UsbId | None:
    for u in USB_IDS:
        if u.vid == vid and (u.pid is None or u.pid == pid):
            return u
    return None


def board_ports(board: str | None = None, role: str | None = "serial",
                comports: Callable[[], Iterable] | None = None) -> list[Port]:
    """The serial ports of known boards (only `board`'s when given; only ports of `role` unless
    role is None), sorted by device name."""
    found = []
    for info in (comports or _comports)():
        vid, pid = _u16(getattr(info, "vid", None)), _u16(getattr(info, "pid", None))
        device = _text(getattr(info, "device", None), 1000)
        if vid is None or pid is None or not device:
            continue
        u = identify(vid, pid)
        if u is None or (board is not None and u.board != board) or \
                (role is not None and u.role != role):
            continue
        found.append(Port(device, vid, pid, u.board, u.role, u.what,
                          _text(getattr(info, "serial_number", None), 64)))
    return sorted(found, key=lambda p: p.device)


def all_ports(comports: Callable[[], Iterable] | None = None) -> list[str]:
    """Every serial port's device name (for messages)."""
    try:
        infos = list((comports or _comports)())
    except Exception:  # noqa: BLE001 - only a hint in a message
        return []
    return sorted({d for d in (_text(getattr(i, "device", None), 1000) for i in infos) if d})


def known_ids(board: str | None = None) -> str:
    """The serial USB IDs looked for, one entry per device kind: "ST-LINK 0483:374b/3752
    (disco_f746ng), ..."."""
    groups: dict[tuple[str, int, str], list[str]] = {}
    for u in USB_IDS:
        if u.role == "serial" and (board is None or u.board == board):
            pid = "*" if u.pid is None else f"{u.pid:04x}"
            groups.setdefault((u.what, u.vid, u.board), []).append(pid)
    return ", ".join(f"{what} {vid:04x}:{'/'.join(pids)} ({b})"
                     for (what, vid, b), pids in groups.items())


def pick_port(board: str | None = None,
              comports: Callable[[], Iterable] | None = None) -> Port:
    """The one board on USB (of `board` when given); PortError (one line) when there is none
    or more than one."""
    found = board_ports(board, "serial", comports)
    if len(found) == 1:
        return found[0]
    if found:
        raise PortError("several boards on USB: " + "; ".join(p.describe() for p in found)
                        + ". Choose one: make view PORT=DEVICE (or --port DEVICE)")
    others = all_ports(comports)
    here = (f"serial ports here: {', '.join(others)}" if others
            else "no serial ports here")
    boot = board_ports(board, "bootloader", comports)
    hint = (f"; {boot[0].describe()} is in its bootloader: press reset once to start the app"
            if boot else "")
    raise PortError(f"no board found on USB (looked for {known_ids(board)}; {here}){hint}. "
                    "Plug the board in, or name the port: make view PORT=DEVICE; no board? "
                    "make demo")


# ---- USB drives ---------------------------------------------------------------------------
def _windows_volumes() -> list[tuple[str, Path]]:
    """(volume name, root) of every mounted drive letter (Windows)."""
    import ctypes
    from ctypes import wintypes
    k32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    mask = k32.GetLogicalDrives()
    out = []
    for i in range(26):
        if not mask & (1 << i):
            continue
        root = f"{chr(65 + i)}:\\"
        name = ctypes.create_unicode_buffer(261)
        ok = k32.GetVolumeInformationW(ctypes.c_wchar_p(root), name, 261, None, None, None,
                                       None, wintypes.DWORD(0))
        out.append((name.value if ok else "", Path(root)))
    return out


def mount_places(platform: str | None = None, user: str | None = None) -> list[str]:
    """Where this system mounts USB drives, each as a folder named after the volume."""
    platform = platform or sys.platform
    if platform == "darwin":
        return ["/Volumes"]
    user = user if user is not None else (os.environ.get("USER") or "")
    return [f"/media/{user}", f"/run/media/{user}", "/media", "/mnt"]


def mounted_volumes(platform: str | None = None, bases: list[str] | None = None
                    ) -> list[tuple[str, Path]]:
    """(volume name, mount point) of the removable drives this system shows: the folders under
    the usual mount places (the folder's name is the volume name), or the drive letters."""
    platform = platform or sys.platform
    if platform.startswith("win") and bases is None:
        return _windows_volumes()
    bases = mount_places(platform) if bases is None else bases
    out = []
    for base in bases:
        try:
            entries = sorted(Path(base).iterdir())
        except OSError:
            continue
        out += [(p.name, p) for p in entries if p.is_dir()]
    return out


def find_drive(label: str | None, marker: str | None,
               volumes: Iterable[tuple[str, Path]] | None = None) -> Path | None:
    """The mount point of the drive named `label` (case does not matter, as on FAT) or, failing
    that, of the first drive holding the file `marker`."""
    vols = list(mounted_volumes() if volumes is None else volumes)
    if label is not None:
        for name, root in vols:
            if name.upper() == label.upper() and root.is_dir():
                return root
    if marker is not None:
        for _name, root in vols:
            try:
                if (root / marker).is_file():
                    return root
            except OSError:
                continue
    return None
