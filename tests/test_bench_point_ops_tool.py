"""tools/analysis/bench_point_ops.py: ``--without-patch`` names a CPU patch
module of pointdistiller_mm.compat, and a wrong name lists the right ones."""
import importlib.util

import pytest

from pointdistiller_mm.compat import pfn_layer_cpu


def _tool():
    spec = importlib.util.spec_from_file_location(
        'bench_point_ops', 'tools/analysis/bench_point_ops.py')
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_without_patch_resolves_a_patch_module():
    tool = _tool()
    args = tool.parse_args(['--step', 'CONFIG', '--without-patch',
                            'pfn_layer_cpu'])
    assert args.without_patch == ['pfn_layer_cpu']
    assert tool.compat_module('pfn_layer_cpu') is pfn_layer_cpu


def test_without_patch_unknown_name_lists_the_modules():
    with pytest.raises(SystemExit) as err:
        _tool().compat_module('pfn_layer')
    message = str(err.value)
    assert "no CPU patch module 'pfn_layer'" in message
    assert 'pfn_layer_cpu' in message and 'spconv_cpu' in message
