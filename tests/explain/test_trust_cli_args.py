"""trust_cli's arguments are range-checked by argparse (issue 19): `--image 99999999` and `--steps 100000000`
once ended in raw allocator tracebacks; now each is refused with a message naming the range, before anything
is loaded, in the memory of the imports alone."""

from __future__ import annotations

import pytest

from resnet_core.trust_cli import IMAGE_RANGE, STEPS_RANGE, THREADS_RANGE, main
from tests.memory import run_measured


@pytest.mark.parametrize("args, words", [
    (["--image", "99999999"], f"argument --image: 99999999 is out of range: give a whole number from 0 to "
                              f"{IMAGE_RANGE[1]}"),
    (["--image", "-1"], "argument --image: -1 is out of range"),
    (["--image", "1e9"], "argument --image: '1e9' is not a whole number"),
    (["--steps", "100000000"], f"argument --steps: 100000000 is out of range: give a whole number from 1 to "
                               f"{STEPS_RANGE[1]}"),
    (["--steps", "0"], "argument --steps: 0 is out of range"),
    (["--threads", "100000"], f"argument --threads: 100000 is out of range: give a whole number from 1 to "
                              f"{THREADS_RANGE[1]}"),
    (["--block", "x" * 10_000], "argument --block: not a block name"),
])
def test_every_argument_out_of_range_is_refused_by_name(capsys, args, words):
    with pytest.raises(SystemExit) as exit_info:
        main(["--run", "bundled", *args])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err


def test_the_refusals_cost_only_the_imports():
    code = ("import sys\nfrom resnet_core.trust_cli import main\n"
            "for args in (['--image', '99999999'], ['--steps', '100000000']):\n"
            "    try:\n        main(['--run', 'bundled', *args])\n    except SystemExit as exc:\n"
            "        print('exit', exc.code)\n")
    baseline, _ = run_measured("import resnet_core.trust_cli")
    peak, out = run_measured(code)
    assert out.split() == ["exit", "2", "exit", "2"]
    assert peak - baseline < 16, (peak, baseline)


def test_the_edges_of_each_range_are_accepted():
    from resnet_core.trust_cli import whole_number

    parse = whole_number(*IMAGE_RANGE)
    assert parse(str(IMAGE_RANGE[0])) == 0 and parse(str(IMAGE_RANGE[1])) == IMAGE_RANGE[1]
