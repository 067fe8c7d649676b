"""The README's main job, ``tools/demo.py``, end to end with ``--quick``
(tiny data set, two epochs per run: the full demo's code path)."""
import json
import os

from tests.conftest import run_tool

from pointdistiller_mm.demo.settings import DISTILL_CONFIG

PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def test_quick_demo_runs_every_stage(tmp_path):
    work, data = tmp_path / 'demo', tmp_path / 'data'
    proc = run_tool(['PYTHON', 'tools/demo.py', '--quick', '--work-dir',
                     str(work), '--data-root', str(data)], timeout=1200)
    out = proc.stdout
    assert (data / 'kitti_infos_train.pkl').is_file()
    if (os.cpu_count() or 1) >= 2:
        assert 'side by side' in out
        assert out.count('OMP_NUM_THREADS=') == 2
    assert 'demo finished in' in out

    results = json.loads((work / 'demo_results.json').read_text())
    rows = {r['name']: r for r in results['rows']}
    assert list(rows) == ['teacher', 'student', 'student + KD']
    for row in rows.values():
        assert set(row['ap']) >= {'mAP_3D', 'mAP_BEV'}
        assert row['params_m'] > 0 and row['gflops'] > 0
    assert rows['student']['params_m'] == rows['student + KD']['params_m']
    assert rows['teacher']['params_m'] > 3 * rows['student']['params_m']
    assert rows['student + KD']['config'].endswith(
        os.path.basename(DISTILL_CONFIG))
    assert set(results['kd_gain']) >= {'mAP_3D', 'mAP_BEV'}
    # the picture follows the recipe's rows: cells of the BEV map
    imp = results['meta']['importance']
    assert imp['unit'] == 'BEV cell' and imp['num_sampled'] > 0
    for picture in results['pictures']:
        with open(picture, 'rb') as f:
            assert f.read(8) == PNG_MAGIC, picture
    md = (work / 'demo_results.md').read_text()
    assert '| student + KD |' in md and 'KD gain' in md
    for name in ('teacher', 'student', 'distill'):
        assert list((work / name).glob('epoch_2.pth')), name
