"""The typed placement between the planners and the code generator: buffer keys, a schedule's
address map, and the fence rows (check points) of the generated C."""

import pytest

from patchcam.compiler import memplan, patchplan
from patchcam.compiler.placement import BufferKey, CheckPoint, Role, fence_rows
from patchcam.compiler.randgraph import random_graph


def test_keys_name_what_they_hold():
    g = random_graph(3, n_blocks=6)
    op = g.ops[1]
    assert BufferKey.scratch(1, op) == BufferKey(Role.SCRATCH, op.name, 1)
    assert BufferKey.crop(1, op, 0) != BufferKey.crop(1, op, 1)
    assert BufferKey.tile("x") != BufferKey.tensor("x") != BufferKey.full("x")
    # a tensor named like another buffer's spelling does not collide with it
    assert BufferKey.tensor("x:tile") != BufferKey.tile("x")
    spelled = [BufferKey.tensor("x"), BufferKey.full("x"), BufferKey.tile("x"),
               BufferKey.row_cache("x"), BufferKey.col_cache("x"), BufferKey.crop(1, op, 0),
               BufferKey.scratch(1, op)]
    assert list(map(str, spelled)) == ["x", "x:full", "x:tile", "x:row-cache", "x:col-cache",
                                       f"{op.name}:crop0", f"{op.name}:scratch"]


def test_memplan_keys_its_buffers():
    g = random_graph(3, n_blocks=6)
    plan = memplan.plan_layers(g)
    roles = {b.key.role for b in plan.buffers}
    assert roles <= {Role.TENSOR, Role.SCRATCH}
    for i, s in enumerate(plan.scratch):
        if s is not None:
            assert s.key == BufferKey.scratch(i, g.ops[i])
    assert all(plan.tensors[t].key == BufferKey.tensor(t) for t in plan.tensors)


@pytest.mark.parametrize("mode", ["recompute", "cache"])
def test_schedule_placement_covers_the_stage(mode):
    g = random_graph(3, n_blocks=6)
    k = patchplan.valid_splits(g)[-2]
    s = patchplan.plan_patches(g, k, (2, 2), mode)
    p = s.placement
    assert p is not None and p.arena_bytes == s.arena_bytes
    out_k = g.ops[k].output
    assert BufferKey.full(out_k) in p and BufferKey.tensor(g.input) in p
    # op K's output tensor (the layer phase's name) is stored in its full buffer
    assert p[BufferKey.tensor(out_k)] == p[BufferKey.full(out_k)]
    for op in g.ops[:k]:
        assert BufferKey.tile(op.output) in p
    caches = [key for key in p.owners if key.role in (Role.ROW_CACHE, Role.COL_CACHE)]
    assert bool(caches) == (mode == "cache")
    assert BufferKey.tile("no such tensor") not in p
    with pytest.raises(KeyError):
        p[BufferKey.tile("no such tensor")]
    assert patchplan.plan_patches(g, k, (2, 2), mode, place=False).placement is None


def test_check_points_number_the_fence_rows():
    n = 5
    assert [CheckPoint.op(i).row(n) for i in range(n)] == list(range(n))
    assert CheckPoint.input_copy().row(n) == n
    assert CheckPoint.halo(2).row(n) == n + 3
    fences = {CheckPoint.halo(0): [(3, 3)], CheckPoint.input_copy(): [(2, 2)]}
    fences |= {CheckPoint.op(i): [(i, 1)] for i in range(n)}
    assert fence_rows(fences, n) == [[(i, 1)] for i in range(n)] + [[(2, 2)], [(3, 3)]]
    del fences[CheckPoint.input_copy()]  # a halo row without the copy row before it
    with pytest.raises(ValueError, match="not rows"):
        fence_rows(fences, n)
