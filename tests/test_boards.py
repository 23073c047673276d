"""The board table and the board folders agree (docs/adding_a_board.md)."""

from patchcam.paths import REPO
from patchcam.targets import flash
from patchcam.targets.boards import BOARD_SPECS

FLASHERS = ("st_link", "bossac")


def test_every_real_board_has_its_folder_glue_and_flasher():
    real = [b for b in BOARD_SPECS.values() if not b.virtual]
    assert real
    for b in real:
        folder = REPO / "firmware" / "boards" / b.name
        assert (folder / "CMakeLists.txt").is_file(), b.name
        assert (folder / "mbed_app.json5").is_file(), b.name
        assert [p for p in folder.glob(f"board_{b.name}.c*")], b.name
        assert b.mbed_target, b.name
        assert b.flasher in FLASHERS, b.name
        assert b.firmware_ram_bytes > 0 and b.firmware_flash_bytes > 0, b.name


def test_virtual_boards_have_their_folder():
    for b in BOARD_SPECS.values():
        if b.virtual:
            assert (REPO / "firmware" / "boards" / b.name).is_dir(), b.name


def test_a_board_without_flasher_is_refused_with_a_hint(monkeypatch, tmp_path, capsys):
    spec = BOARD_SPECS["disco_f746ng"]
    bare = type(spec)(**{**spec.__dict__, "name": "newboard", "flasher": ""})
    monkeypatch.setitem(BOARD_SPECS, "newboard", bare)
    image = flash.Image("vww", "newboard", tmp_path / "vww.elf", flash.REPO / "build" / "vww.bin",
                        1, 1)
    monkeypatch.setattr(flash, "build", lambda *a, **k: image)
    assert flash.main(["flash", "--app", "vww", "--board", "newboard"]) == 2
    err = capsys.readouterr().err
    assert "no flasher" in err and "adding_a_board.md" in err
