"""tools/compare_kd.py end to end on tiny data (two methods, the quick
schedule): the report files, then a rerun that reuses the finished run and
resumes the interrupted one."""
import csv

from tests.conftest import run_tool


def test_compare_kd_quick_report_and_resume(trained_teacher, tiny_kitti,
                                            tmp_path):
    teacher_dir, _ = trained_teacher
    work = tmp_path / 'compare'
    args = ['PYTHON', 'tools/compare_kd.py', '--quick',
            '--methods', 'nokd', 'fitnets', '--seeds', '0', '--work-dir',
            str(work), '--data-root', str(tiny_kitti),
            '--teacher-checkpoint', str(teacher_dir)]
    first = run_tool(args, timeout=900)
    for ext in ('md', 'csv', 'json', 'png'):
        assert (work / f'compare_kd.{ext}').is_file(), ext
    with open(work / 'compare_kd.csv') as f:
        rows = list(csv.DictReader(f))
    assert [r['method'] for r in rows] == ['nokd', 'fitnets']
    for row in rows:
        assert row['num_seeds'] == '1'
        assert row['mAP_3D_mean'] != '' and row['mAP_BEV_mean'] != ''
        assert float(row['s_per_iter_mean']) > 0
        assert row['mAP_3D_std'] == ''  # one seed: no spread
    md = (work / 'compare_kd.md').read_text()
    assert '| Student w/o KD |' in md and '| + FitNets (Romero et al.) |' \
        in md
    assert 'Seeds: 0' in md
    commands = [line for line in first.stdout.splitlines()
                if '$ python tools/train.py' in line]
    assert len(commands) == 2
    assert 'model.teacher.checkpoint=' not in commands[0]  # no KD
    assert 'model.teacher.checkpoint=' in commands[1]
    assert 'reusing' not in first.stdout

    # the fitnets run "was interrupted": it has checkpoints, no done.json
    (work / 'runs' / 'fitnets' / 'seed0' / 'done.json').unlink()
    again = run_tool(args, timeout=900)
    assert '[nokd/seed0] finished before' in again.stdout
    assert '[fitnets/seed0] resuming the interrupted run' in again.stdout
    assert '--resume' in again.stdout
    with open(work / 'compare_kd.csv') as f:
        rows = list(csv.DictReader(f))
    assert rows[1]['method'] == 'fitnets' and rows[1]['mAP_3D_mean'] != ''
