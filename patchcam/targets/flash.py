"""`make firmware` / `make flash`: build an app for a real board and put it on the board.

    python -m patchcam.targets.flash fit   --app person_detect --board nano33ble_sense
    python -m patchcam.targets.flash build --app person_detect --board disco_f746ng [--mbed-os DIR]
    python -m patchcam.targets.flash flash --app person_detect --board disco_f746ng [--method drive]

Boards: `disco_f746ng` (STM32F746G-DISCO + Arducam Mini 2MP Plus) and `nano33ble_sense`
(Arduino Nano 33 BLE Sense + OV7675), both built on Mbed OS Community Edition with CMake;
`qemu_m7` is the virtual board (nothing to flash: `make demo`). docs/boards.md has the wiring.

1. fit: before anything is built, the app's planned arena (MODEL_ARENA_BYTES of the generated
   model.h) + the frame buffer (the larger of one camera frame and the model input as RGB888) +
   the firmware's own RAM must fit the board's SRAM, and the model's parameters + the firmware's
   code its flash. When they do not, one line names every number.
2. build: `cmake -G Ninja` on firmware/boards/<board>/ with Mbed CE from MBED_OS_PATH (default:
   a pinned clone in ~/.cache/patchcam/, made on first use), image in build/mbed/<board>/.
   One build folder per board, so Mbed OS compiles once per board and each app relinks.
3. flash: the DISCO through the ST-LINK drive (copy the .bin) or an Mbed CE upload method
   (STM32CUBE, OPENOCD, PYOCD, STLINK); the Nano through its bootloader with bossac. Boards,
   ports and drives are found by USB ID and volume name on Linux, macOS and Windows
   (patchcam.targets.usb). `openmv_h7` is not an Mbed board: `make openmv` writes its files,
   and `flash` copies them to the camera's USB drive.

Whatever is missing (toolchain, Mbed CE, the board, permissions on its serial port) stops the
command with the exact thing to do; a METHOD= that does not apply is refused before building.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from patchcam import download as dl
from patchcam.paths import REPO
from patchcam.targets import usb
from patchcam.targets.boards import BOARD_SPECS, BoardSpec

BUILD = REPO / "build" / "mbed"

# The Mbed CE commit these boards were built and measured with (docs/boards.md).
MBED_OS_URL = "https://github.com/mbed-ce/mbed-os"
MBED_OS_PIN = "87a55e22cbf47ebcecc3f30f5733322047373138"
MBED_OS_CACHE = Path("~/.cache/patchcam").expanduser() / f"mbed-os-{MBED_OS_PIN[:12]}"

APT = "sudo apt-get install --no-install-recommends"
TOOLCHAIN_HINT = (f"{APT} gcc-arm-none-eabi libnewlib-arm-none-eabi "
                  "libstdc++-arm-none-eabi-newlib cmake ninja-build")
CMAKE_MIN = (3, 19)
SRAM_BASE, PERIPH_BASE = 0x2000_0000, 0x4000_0000  # the Cortex-M memory map
NOT_LOADED = (".debug", ".comment", ".ARM.attributes", ".stab")  # ELF-only sections

# Mbed CE upload methods for the DISCO and the program each one runs, with how to get it.
DISCO_METHODS: dict[str, tuple[str, str]] = {
    "STM32CUBE": ("STM32_Programmer_CLI", "install STM32CubeProgrammer from st.com and put its "
                  "bin/ folder on PATH"),
    "OPENOCD": ("openocd", f"{APT} openocd"),
    "PYOCD": ("pyocd", "pip install pyocd (into any Python; it must be on PATH)"),
    "STLINK": ("st-flash", f"{APT} stlink-tools"),
}
UDEV_HINT = ("sudo usermod -aG dialout $USER, then log out and in (serial ports); for the "
             "ST-LINK's debug interface also install your flasher's udev rules, e.g. "
             "sudo cp /usr/share/openocd/contrib/60-openocd.rules /etc/udev/rules.d/ && "
             "sudo udevadm control --reload && sudo udevadm trigger")


class FlashError(RuntimeError):
    """Something the user has to do first (the message says what)."""


# ---- the fit check ------------------------------------------------------------------------
@dataclass(frozen=True)
class ModelFacts:
    """What the fit check needs from a generated model.h."""
    name: str
    arena_bytes: int
    param_bytes: int
    input_w: int
    input_h: int
    input_c: int
    # A model whose patch stage reads its input outside the arena (MODEL_FUSED_INPUT) needs
    # no RAM for it beyond the arena in the app: the app loop preprocesses each input window
    # straight from the frame buffer (model_invoke_source), so no whole input exists.

    @property
    def input_rgb888_bytes(self) -> int:
        return self.input_w * self.input_h * 3


def read_model_facts(model_dir: str | Path) -> ModelFacts:
    """The #defines of model_dir/model.h (written by patchcam.compiler.codegen)."""
    header = Path(model_dir) / "model.h"
    if not header.is_file():
        raise FlashError(f"{model_dir}: no model.h (generate the model first)")
    text = header.read_text(errors="replace")

    def num(name: str) -> int:
        m = re.search(rf"#define\s+{name}\s+(\d+)", text)
        if m is None:
            raise FlashError(f"{header}: no {name}")
        return int(m.group(1))

    m = re.search(r'#define\s+MODEL_NAME\s+"([^"]*)"', text)
    return ModelFacts(m.group(1) if m else Path(model_dir).name, num("MODEL_ARENA_BYTES"),
                      num("MODEL_PARAM_BYTES"), num("MODEL_INPUT_W"), num("MODEL_INPUT_H"),
                      num("MODEL_INPUT_C"))


@dataclass(frozen=True)
class Fit:
    app: str
    board: BoardSpec
    arena_bytes: int
    frame_bytes: int
    firmware_ram_bytes: int
    param_bytes: int
    firmware_flash_bytes: int

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes + self.frame_bytes + self.firmware_ram_bytes

    @property
    def flash_bytes(self) -> int:
        return self.param_bytes + self.firmware_flash_bytes

    @property
    def fits(self) -> bool:
        return self.ram_bytes <= self.board.sram_bytes and \
            self.flash_bytes <= self.board.flash_bytes

    def ram_line(self) -> str:
        return (f"RAM {self.ram_bytes:,} B = arena {self.arena_bytes:,} + frame "
                f"buffer {self.frame_bytes:,} + firmware {self.firmware_ram_bytes:,} vs SRAM "
                f"{self.board.sram_bytes:,}")

    def flash_line(self) -> str:
        return (f"flash {self.flash_bytes:,} B = parameters {self.param_bytes:,} + firmware "
                f"{self.firmware_flash_bytes:,} vs {self.board.flash_bytes:,}")

    def message(self) -> str:
        """One line: what the app needs on the board, and by how much it is over if it is."""
        b = self.board
        parts = []
        if self.ram_bytes > b.sram_bytes:
            parts.append(f"{self.ram_line()} (over by {self.ram_bytes - b.sram_bytes:,})")
        if self.flash_bytes > b.flash_bytes:
            parts.append(f"{self.flash_line()} (over by {self.flash_bytes - b.flash_bytes:,})")
        if parts:
            return f"{self.app} does not fit {b.name} ({b.mcu}): " + "; ".join(parts)
        return f"{self.app} fits {b.name}: {self.ram_line()}; {self.flash_line()}"


def frame_buffer_bytes(board: BoardSpec, facts: ModelFacts) -> int:
    """The app loop's frame buffer (PC_APP_FRAME_MAX_BYTES): one camera frame as the sensor
    sends it, or one FRAME image at the model's input size in RGB888, whichever is larger."""
    return max(board.camera_frame_bytes, facts.input_rgb888_bytes)


def fit_check(app: str, board: BoardSpec, facts: ModelFacts) -> Fit:
    return Fit(app, board, facts.arena_bytes, frame_buffer_bytes(board, facts),
               board.firmware_ram_bytes, facts.param_bytes, board.firmware_flash_bytes)


# ---- which model --------------------------------------------------------------------------
def model_dir_for(app: str) -> tuple[Path, str]:
    """(generated model folder, one line saying which model) for an app: its exported model in
    apps/<app>/generated/, or its untrained network, generated into build/viewer/<app>/model
    exactly as `make demo` does."""
    from patchcam.host.viewer.app import app_model_dir
    try:
        model_dir, _trained, note = app_model_dir(app)
    except SystemExit as e:  # the viewer reports a bad app name this way
        raise FlashError(str(e)) from None
    return model_dir, note


# ---- the build ----------------------------------------------------------------------------
def board_spec(name: str) -> BoardSpec:
    if name not in BOARD_SPECS:
        raise FlashError(f"no board {name!r}: choose from {', '.join([*BOARD_SPECS, OPENMV])}")
    return BOARD_SPECS[name]


def check_toolchain() -> None:
    """arm-none-eabi-gcc/g++ with a C++ library, cmake >= 3.19, ninja: or the line to get them."""
    missing = [t for t in ("arm-none-eabi-gcc", "arm-none-eabi-g++", "arm-none-eabi-size",
                           "cmake", "ninja") if shutil.which(t) is None]
    if missing:
        raise FlashError(f"missing {', '.join(missing)}: {TOOLCHAIN_HINT}")
    # Mbed OS is C++: Debian ships the Arm C++ library in its own package.
    lib = subprocess.run(["arm-none-eabi-g++", "-print-file-name=libstdc++.a"],
                         capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(lib):
        raise FlashError("arm-none-eabi-g++ has no libstdc++ (Mbed OS is C++): "
                         f"{APT} libstdc++-arm-none-eabi-newlib")
    out = subprocess.run(["cmake", "--version"], capture_output=True, text=True).stdout
    m = re.search(r"(\d+)\.(\d+)", out)
    if m is None or (int(m.group(1)), int(m.group(2))) < CMAKE_MIN:
        raise FlashError(f"cmake {'.'.join(map(str, CMAKE_MIN))} or newer needed (found "
                         f"{m.group(0) if m else 'unknown'}): pip install cmake, or "
                         f"{APT} cmake")


def resolve_mbed_os(path: str | None, clone: bool = True) -> Path:
    """MBED_OS_PATH if given (it must hold Mbed CE), else the pinned clone in the cache,
    cloned on first use (Mbed CE's CMake fetches the submodules a target needs)."""
    if path:
        p = Path(path).expanduser().resolve()
        if not (p / "tools" / "cmake" / "mbed_toolchain_setup.cmake").is_file():
            raise FlashError(f"MBED_OS_PATH={path} is not an Mbed OS Community Edition tree: "
                             f"git clone {MBED_OS_URL} {path} && git -C {path} checkout "
                             f"{MBED_OS_PIN} (or leave MBED_OS_PATH out to use "
                             f"{MBED_OS_CACHE})")
        return p
    p = MBED_OS_CACHE
    clone_cmd = (f"git clone {MBED_OS_URL} {p} && git -C {p} checkout {MBED_OS_PIN}")
    if p.exists():  # made by an earlier run: only a checkout of exactly the pin is used
        try:
            dl.verify_pinned(p, MBED_OS_PIN, "Mbed OS CE")
        except dl.CloneError as e:
            raise FlashError(str(e)) from None
        if (p / "tools" / "cmake" / "mbed_toolchain_setup.cmake").is_file():
            return p
        raise FlashError(f"{p} is not an Mbed OS Community Edition tree: remove it "
                         f"(rm -rf {p}) and run again")
    if not clone:
        raise FlashError(f"no Mbed OS CE: set MBED_OS_PATH=DIR, or run {clone_cmd}")
    try:
        dl.clone_pinned(MBED_OS_URL, p, MBED_OS_PIN, "Mbed OS CE")
    except dl.CloneError as e:
        raise FlashError(f"{e} (or set MBED_OS_PATH=DIR to an Mbed CE checkout)") from None
    return p


@dataclass(frozen=True)
class Image:
    app: str
    board: str
    elf: Path
    bin: Path
    flash_bytes: int  # text + data (what goes to flash)
    ram_bytes: int  # data + bss, including the boot stack; Mbed's heap is whatever is left


def image_sizes(elf: Path) -> tuple[int, int]:
    """(flash, RAM) of an Mbed image from `arm-none-eabi-size -A` and the stack symbols:
    flash = the sections stored in flash (code, constants, exception tables) + the initial
    values of .data; RAM = every section in SRAM except Mbed's heap (which takes whatever RAM
    is left) + the boot stack (__StackTop - __StackLimit)."""
    out = subprocess.run(["arm-none-eabi-size", "-A", str(elf)], capture_output=True,
                         text=True, check=True).stdout
    flash = ram = 0
    has_stack_section = False
    for line in out.splitlines():
        f = line.split()
        if len(f) != 3 or not f[1].isdigit():
            continue
        name, size, addr = f[0], int(f[1]), int(f[2])
        if name.startswith(NOT_LOADED):
            continue
        if addr < SRAM_BASE:
            flash += size
        elif SRAM_BASE <= addr < PERIPH_BASE and name != ".heap":
            ram += size
            has_stack_section |= name == ".stack"
            if name == ".data":
                flash += size
    syms = {}
    nm = subprocess.run(["arm-none-eabi-nm", str(elf)], capture_output=True, text=True,
                        check=True).stdout
    for line in nm.splitlines():
        f = line.split()
        if len(f) == 3 and f[2] in ("__StackTop", "__StackLimit"):
            syms[f[2]] = int(f[0], 16)
    if len(syms) == 2 and not has_stack_section:  # the STM32 scripts leave it unnamed
        ram += syms["__StackTop"] - syms["__StackLimit"]
    return flash, ram


def configure_args(board: BoardSpec, mbed_os: Path, model_dir: Path, app: str,
                   frame_bytes: int, extra: tuple[str, ...] = ()) -> list[str]:
    src = REPO / "firmware" / "boards" / board.name
    args = ["cmake", "-S", str(src), "-B", str(BUILD / board.name), "-G", "Ninja",
            f"-DMBED_OS_PATH={mbed_os}", f"-DPATCHCAM_MODEL_DIR={model_dir.resolve()}",
            f"-DPATCHCAM_APP={app}", f"-DPATCHCAM_FRAME_BYTES={frame_bytes}",
            # Mbed CE's default profile: -Os, and Mbed's fatal-error reports stay in (they
            # reach the serial port), which is what bringing up a board needs.
            "-DCMAKE_BUILD_TYPE=Develop", *extra]
    # Building needs no flasher: Mbed CE refuses to configure when the upload method's program
    # is missing, so pick one only for an upload that goes through Mbed (flash_disco).
    if not any(a.startswith("-DUPLOAD_METHOD=") for a in extra):
        args.append("-DUPLOAD_METHOD=NONE")
    # A tree that is not a git checkout (an archive) cannot have its submodules managed.
    if not (mbed_os / ".git").exists():
        args.append("-DMBED_MANAGE_SUBMODULES=OFF")
    return args


def build(app: str, board: BoardSpec, mbed_os: str | None, jobs: int | None = None,
          cmake_extra: tuple[str, ...] = (), model_dir: Path | None = None) -> Image:
    """Fit check, then configure and build; returns the image (raises FlashError).
    model_dir: a generated model folder (model.c, model.h, app_config.h) instead of the
    app's own, e.g. one generated with a patch schedule."""
    if board.virtual:
        raise FlashError(virtual_message(app, board))
    if model_dir is None:
        model_dir, note = model_dir_for(app)
    else:
        note = f"model from {model_dir}"
    facts = read_model_facts(model_dir)
    fit = fit_check(app, board, facts)
    print(f"flash: {note}")
    if not fit.fits:
        raise FlashError(fit.message())
    print(f"flash: {fit.message()}")
    check_toolchain()
    tree = resolve_mbed_os(mbed_os)
    BUILD.mkdir(parents=True, exist_ok=True)
    cfg = configure_args(board, tree, model_dir, app, fit.frame_bytes, cmake_extra)
    if subprocess.run(cfg).returncode != 0:
        raise FlashError(f"cmake could not configure {board.name} (its output is above); "
                         f"a stale build folder? rm -rf {BUILD / board.name}")
    cmd = ["cmake", "--build", str(BUILD / board.name), "--target", app]
    if jobs:
        cmd += ["-j", str(jobs)]
    if subprocess.run(cmd).returncode != 0:
        raise FlashError(f"{app} for {board.name} did not build (the compiler's output is "
                         "above)")
    elf = BUILD / board.name / f"{app}.elf"
    flash, ram = image_sizes(elf)
    print(f"flash: {elf.relative_to(REPO)}: flash {flash:,} / {board.flash_bytes:,} B, "
          f"static RAM {ram:,} / {board.sram_bytes:,} B")
    return Image(app, board.name, elf, elf.with_suffix(".bin"), flash, ram)


def prebuilt_image(app: str, board: BoardSpec) -> Image | None:
    """The prebuilt release/<board>/<app>.bin (patchcam.targets.release) when no toolchain is
    installed and the image was built from the app's current model; None when a build should
    run (a toolchain is there, or no image is listed: the build then says what is missing)."""
    try:
        check_toolchain()
        return None
    except FlashError as missing:
        why = str(missing)
    from patchcam.targets import release
    try:
        found = release.find_prebuilt(app, board.name)
    except release.ReleaseError as e:
        raise FlashError(f"{why}; and the prebuilt image cannot be used: {e}") from None
    if found is None:
        return None
    entry, files = found
    print(f"flash: no toolchain here ({why.split(':')[0]}); using the prebuilt image "
          f"{entry.file} built from model 0x{entry.model_hash:08x}, "
          f"the same as apps/{app}/generated")
    return Image(app, board.name, files[0], files[0], entry.flash_bytes, entry.ram_bytes)


# ---- uploading ----------------------------------------------------------------------------
def virtual_message(app: str, board: BoardSpec) -> str:
    return (f"{board.name} is the virtual board: there is nothing to flash. Run it with "
            "`make demo` (person detection under QEMU), or the viewer on it: "
            f"patchcam view --board qemu_m7 --app {app}; for hardware use "
            "BOARD=disco_f746ng or BOARD=nano33ble_sense")


def check_port_access(port: str) -> None:
    """A POSIX device path must exist and be readable and writable (Windows' COM ports are
    names, not files: pyserial reports what goes wrong there)."""
    if os.name != "posix" or "://" in port:
        return
    if not os.path.exists(port):
        raise FlashError(f"{port} does not exist: is the board plugged in? (serial ports "
                         f"here: {', '.join(usb.all_ports()) or 'none'})")
    if not os.access(port, os.R_OK | os.W_OK):
        raise FlashError(f"no permission to open {port}: {UDEV_HINT}")


def copy_to_drive(files: list[Path], drive: Path) -> None:
    """Copy files onto a board's USB drive and flush them to it (the board acts on the data
    once it is written, so the copy is complete before this returns)."""
    if not drive.is_dir():
        raise FlashError(f"{drive} is not a folder (the board's USB drive, mounted)")
    for f in files:
        dest = drive / f.name
        try:
            shutil.copyfile(f, dest)
            with open(dest, "rb+") as fh:
                os.fsync(fh.fileno())
        except OSError as e:
            raise FlashError(f"cannot write {dest}: {e.strerror or e}") from None
    if hasattr(os, "sync"):
        os.sync()


def bossac_candidates() -> list[str]:
    """Where the Arduino IDE puts bossac for the Nano 33 BLE core, on Linux, macOS, Windows."""
    homes = [Path("~/.arduino15").expanduser(), Path("~/Library/Arduino15").expanduser()]
    if os.environ.get("LOCALAPPDATA"):
        homes.append(Path(os.environ["LOCALAPPDATA"]) / "Arduino15")
    found = []
    for home in homes:
        for name in ("bossac", "bossac.exe"):
            found += sorted(glob.glob(str(home / "packages" / "arduino" / "tools" / "bossac"
                                          / "*" / name)))
    return found


def find_bossac() -> str | None:
    """bossac on PATH, or the one the Arduino IDE installs for the Nano 33 BLE."""
    exe = shutil.which("bossac")
    if exe:
        return exe
    found = bossac_candidates()
    return found[-1] if found else None


def check_method(board: BoardSpec, method: str | None) -> str | None:
    """METHOD= checked before anything is built: None, "drive" or an Mbed CE upload method of
    the DISCO (any case); the Nano has one way (bossac) and takes no METHOD."""
    if method is None:
        return None
    if board.flasher == "st_link":
        m = "drive" if method.lower() == "drive" else method.upper()
        if m == "drive" or m in DISCO_METHODS:
            return m
        raise FlashError(f"METHOD={method} is not a way to flash {board.name}: choose drive "
                         f"(copy to the ST-LINK drive) or {', '.join(DISCO_METHODS)}")
    raise FlashError(f"METHOD={method} does not apply to {board.name}: it is flashed with "
                     "bossac through its bootloader; leave METHOD out")


def view_hint(app: str) -> str:
    return f"Then: make view APP={app} (it finds the board's serial port)"


def flash_disco(image: Image, method: str | None, mbed_os: str | None,
                model_dir: Path | None = None, drive: Path | None = None) -> None:
    label, marker = usb.DISCO_DRIVE
    if method in (None, "drive"):
        if drive is None:
            drive = usb.find_drive(label, marker)
        if drive is not None:
            print(f"flash: copying {image.bin.name} to the ST-LINK drive {drive}")
            copy_to_drive([image.bin], drive)
            print("flash: done; the ST-LINK programs the chip and resets it (its COM LED "
                  f"blinks meanwhile). {view_hint(image.app)}")
            return
    if not usb.board_ports("disco_f746ng"):
        raise FlashError("no ST-LINK on USB: plug the DISCO's USB ST-LINK port (CN14, next to "
                         "the Ethernet jack) into this computer "
                         f"(looked for {usb.known_ids('disco_f746ng')})")
    if method in (None, "drive"):
        if method == "drive":
            raise FlashError(f"the ST-LINK drive {label} is not mounted: mount it (your desktop "
                             "does it on plug-in; else udisksctl mount -b /dev/sdX), give "
                             "DRIVE=its mount point, or choose METHOD=STM32CUBE / OPENOCD / "
                             "PYOCD / STLINK")
        method = next((m for m, (exe, _) in DISCO_METHODS.items() if shutil.which(exe)), None)
        if method is None:
            tools = "; ".join(f"{m}: {hint}" for m, (_, hint) in DISCO_METHODS.items())
            raise FlashError(f"the ST-LINK drive {label} is not mounted and no flasher is "
                             f"installed. Mount the drive and run make flash again (or give "
                             f"DRIVE=its mount point), or copy {image.bin} onto it; or install "
                             f"one of: {tools}")
    method = method.upper()
    if method not in DISCO_METHODS:
        raise FlashError(f"unknown method {method!r} for disco_f746ng: drive, "
                         f"{', '.join(DISCO_METHODS)}")
    exe, hint = DISCO_METHODS[method]
    if shutil.which(exe) is None:
        raise FlashError(f"upload method {method} needs {exe}: {hint}")
    # Mbed CE generates the flash-<app> target for the upload method chosen at configure time.
    print(f"flash: Mbed CE upload method {method}")
    board = BOARD_SPECS["disco_f746ng"]
    build(image.app, board, mbed_os, cmake_extra=(f"-DUPLOAD_METHOD={method}",),
          model_dir=model_dir)
    cmd = ["cmake", "--build", str(BUILD / board.name), "--target", f"flash-{image.app}"]
    if subprocess.run(cmd).returncode != 0:
        raise FlashError(f"{method} could not flash the board (its output is above). Is the "
                         f"ST-LINK in use by another program? Permissions: {UDEV_HINT}")
    print(f"flash: done. {view_hint(image.app)}")


def flash_nano(image: Image, port: str | None) -> None:
    bossac = find_bossac()
    if bossac is None:
        raise FlashError("bossac not found: install the Arduino IDE's \"Arduino Mbed OS Nano "
                         "Boards\" core (it brings packages/arduino/tools/bossac under "
                         "~/.arduino15, ~/Library/Arduino15 or %LOCALAPPDATA%\\Arduino15), or "
                         "build BOSSA 1.9+ from github.com/arduino/BOSSA and put bossac on "
                         "PATH")
    if port is None:
        boot = usb.board_ports("nano33ble_sense", "bootloader")
        if not boot:
            raise FlashError("the Nano's bootloader is not on USB "
                             f"({usb.known_ids('nano33ble_sense')} is the app; the bootloader "
                             "is 2341:005a): double-tap its reset button (the orange LED "
                             "pulses), then run make flash again within a few seconds (or "
                             "give PORT=DEVICE)")
        if len(boot) > 1:
            raise FlashError("several Nano bootloaders on USB: "
                             + "; ".join(b.describe() for b in boot)
                             + ". Give PORT=DEVICE")
        port = boot[0].device
    check_port_access(port)
    # bossac takes the port's name without /dev/ (ttyACM0, cu.usbmodem1101, COM5)
    name = port[len("/dev/"):] if port.startswith("/dev/") else port
    cmd = [bossac, "--debug", f"--port={name}", "--usb-port=1", "--info",
           "--erase", "--write", str(image.bin), "--reset"]
    print("flash: " + " ".join(cmd))
    if subprocess.run(cmd).returncode != 0:
        raise FlashError("bossac failed (its output is above): double-tap reset so the orange "
                         "LED pulses and run make flash again right away")
    print(f"flash: done. {view_hint(image.app)}")


# ---- OpenMV: files, not an Mbed build -----------------------------------------------------
OPENMV = "openmv_h7"


def openmv_drive_folder(app: str) -> Path:
    return REPO / "build" / "openmv" / app / "drive"


def openmv_route(app: str) -> str:
    return (f"openmv_h7 is not built with Mbed: make openmv APP={app} [MICROPYTHON=dir] "
            f"writes its files to {openmv_drive_folder(app).relative_to(REPO)}/ (or make "
            f"openmv-ml APP={app}, offline and without a compiler: OpenMV's `ml` module), then "
            f"make flash APP={app} BOARD=openmv_h7 copies them to the camera's USB drive "
            "(docs/boards.md, OpenMV Cam H7)")


def prebuilt_openmv(app: str) -> tuple[list[Path], str] | None:
    """The files of the prebuilt OpenMV folder of app (release/openmv_h7/<app>/, else the
    `ml`-module one) when the manifest lists one built from the app's current model."""
    from patchcam.targets import release
    for board in release.OPENMV_BOARDS:
        try:
            found = release.find_prebuilt(app, board)
        except release.ReleaseError as e:
            raise FlashError(f"no build/openmv/{app}/ folder, and the prebuilt {board} folder "
                             f"cannot be used: {e}") from None
        if found is not None:
            entry, files = found
            return files, (f" (prebuilt, built from model 0x{entry.model_hash:08x}, the same "
                           f"as apps/{app}/generated)")
    return None


def flash_openmv(app: str, drive: Path | None) -> None:
    """Copy build/openmv/<app>/drive/ (made by `make openmv`) to the camera's USB drive; else
    the `ml`-module folder of `make openmv-ml`; else the prebuilt folder of release/."""
    folder, note = openmv_drive_folder(app), ""
    if not folder.is_dir() and folder.with_name("drive_ml").is_dir():
        folder = folder.with_name("drive_ml")  # make openmv-ml: OpenMV's `ml` module
        note = (f" (no {openmv_drive_folder(app).relative_to(REPO)}/ from make openmv: the "
                "`ml`-module fallback)")
    files = sorted(f for f in folder.glob("*") if f.is_file()) if folder.is_dir() else []
    prebuilt = None if files else prebuilt_openmv(app)
    if prebuilt is not None:
        files, note = prebuilt
        folder = files[0].parent
    if not files:
        raise FlashError(f"no {folder.relative_to(REPO)}/ yet: {openmv_route(app)}")
    if drive is None:
        drive = usb.find_drive(*usb.OPENMV_DRIVE)
    if drive is None:
        raise FlashError("the OpenMV Cam's USB drive is not mounted (looked for a drive holding "
                         f"{usb.OPENMV_DRIVE[1]}): plug the camera in and wait for its drive, "
                         "or give DRIVE=its mount point; by hand: copy every file in "
                         f"{folder} onto it")
    shown = folder.relative_to(REPO) if folder.is_relative_to(REPO) else folder
    print(f"flash: copying {len(files)} files from {shown}{note} to the "
          f"OpenMV drive {drive}")
    copy_to_drive(files, drive)
    print("flash: done; press the camera's reset button (or eject the drive and replug) to "
          f"start main.py. {view_hint(app)}, or open OpenMV IDE with main_ide.py")


# ---- command line -------------------------------------------------------------------------
def _args(argv: list[str] | None) -> argparse.Namespace:
    boards = ", ".join([*BOARD_SPECS, OPENMV])
    p = argparse.ArgumentParser(
        prog="patchcam flash", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n"
               "  make firmware APP=vww BOARD=disco_f746ng MBED_OS_PATH=~/mbed-os\n"
               "  make flash APP=person_detect BOARD=disco_f746ng          # ST-LINK drive\n"
               "  make flash APP=vww BOARD=nano33ble_sense     # after a double-tap on reset\n"
               "  make flash APP=vww BOARD=openmv_h7           # after make openmv APP=vww\n"
               "  python -m patchcam.targets.flash fit --app mask_detect --board nano33ble_sense\n"
               "wiring, expected speed and the measured sizes: docs/boards.md")
    p.add_argument("action", choices=("fit", "build", "flash"),
                   help="fit: only the memory check; build: fit + compile + link; flash: "
                        "build + upload")
    p.add_argument("--app", required=True, help="an app under apps/ (vww, person_detect, ...)")
    p.add_argument("--board", required=True, help=f"one of: {boards}")
    p.add_argument("--mbed-os", default=os.environ.get("MBED_OS_PATH") or None,
                   help="Mbed OS Community Edition tree (env MBED_OS_PATH; default: a pinned "
                        f"clone in {MBED_OS_CACHE}, made on first use)")
    p.add_argument("--method", help="disco_f746ng: drive (copy to the ST-LINK drive, default "
                                    f"when mounted), {', '.join(DISCO_METHODS)}")
    p.add_argument("--port", help="nano33ble_sense: the bootloader's serial port (default: "
                                  "the port with the bootloader's USB ID, 2341:005a)")
    p.add_argument("--drive", type=Path,
                   help="disco_f746ng, openmv_h7: the board's USB drive, mounted (default: "
                        "found by its name or files under the system's mount places)")
    p.add_argument("--model-dir", type=Path,
                   help="a generated model folder (model.c, model.h, app_config.h) to build "
                        "instead of the app's own (apps/<app>/generated, else its untrained "
                        "network), e.g. one generated with a patch schedule")
    p.add_argument("-j", "--jobs", type=int, help="parallel compile jobs")
    return p.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    a = _args(argv)
    try:
        if a.board == OPENMV:
            if a.action != "flash":
                raise FlashError(openmv_route(a.app))
            if a.method is not None:
                raise FlashError(f"METHOD={a.method} does not apply to openmv_h7: its files "
                                 "are copied to the camera's USB drive; leave METHOD out")
            flash_openmv(a.app, a.drive)
            return 0
        board = board_spec(a.board)
        method = check_method(board, a.method) if a.action == "flash" else None
        if board.virtual:
            print(f"flash: {virtual_message(a.app, board)}")
            return 0
        if a.action == "fit":
            model_dir, note = ((a.model_dir, f"model from {a.model_dir}") if a.model_dir
                               else model_dir_for(a.app))
            fit = fit_check(a.app, board, read_model_facts(model_dir))
            print(f"flash: {note}")
            print(fit.message())
            return 0 if fit.fits else 1
        image = None
        if a.action == "flash" and a.model_dir is None and method in (None, "drive"):
            image = prebuilt_image(a.app, board)
        if image is None:
            image = build(a.app, board, a.mbed_os, a.jobs, model_dir=a.model_dir)
        if a.action == "flash":
            if board.flasher == "st_link":
                flash_disco(image, method, a.mbed_os, a.model_dir, a.drive)
            elif board.flasher == "bossac":
                flash_nano(image, a.port)
            else:
                raise FlashError(f"{board.name} has no flasher in BOARD_SPECS "
                                 "(docs/adding_a_board.md); copy "
                                 f"{image.bin.relative_to(REPO)} to the board by hand")
    except FlashError as e:
        print(f"flash: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
