"""tools/train.py, tools/test.py and tools/dist_train.sh end to end on a tiny
synthetic KITTI-format dataset (one epoch of two iterations, CPU)."""
import math
import re
from pathlib import Path

import torch

from tests.conftest import FAST_OPTIONS, TEACHER, run_tool


def _losses(log: str):
    return [float(v) for v in re.findall(r'\bloss: ([-+.\w]+)', log)]


def test_teacher_trains_without_nan(trained_teacher):
    work, proc = trained_teacher
    log = proc.stdout + proc.stderr
    losses = _losses(log)
    assert len(losses) == 2, log[-3000:]  # 4 frames, batch 2, logged each
    assert all(math.isfinite(v) for v in losses)
    ckpt = work / 'epoch_1.pth'
    assert ckpt.is_file()
    state = torch.load(ckpt, map_location='cpu', weights_only=False)
    assert all(torch.isfinite(v).all() for v in state['state_dict'].values()
               if v.is_floating_point())
    assert (work / 'last_checkpoint').read_text().strip().endswith(
        'epoch_1.pth')
    # nothing half-written is left behind by the atomic checkpoint writer
    assert not list(Path(work).glob('.tmp-*'))


def test_test_prints_kitti_table(trained_teacher, tiny_kitti):
    work, _ = trained_teacher
    proc = run_tool(['PYTHON', 'tools/test.py', TEACHER,
                     str(work / 'epoch_1.pth'), '--work-dir',
                     str(work / 'test'), '--data-root', str(tiny_kitti),
                     '--cfg-options', *FAST_OPTIONS])
    out = proc.stdout + proc.stderr
    for cls in ('Pedestrian', 'Cyclist', 'Car'):
        assert f'{cls} AP11@' in out and f'{cls} AP40@' in out
    # (mmdet3d adds the AOS rows only when there are detections; a model
    # trained for two iterations may have none)
    for kind in ('bbox AP11:', 'bev  AP11:', '3d   AP11:',
                 'bbox AP40:', 'bev  AP40:', '3d   AP40:'):
        assert kind in out, out[-3000:]
    assert 'Kitti metric/pred_instances_3d/KITTI/Overall_3D_AP40_moderate' \
        in out
    assert 'nan' not in out.split('Results of pred_instances_3d')[-1].lower()


def test_resume_continues_from_checkpoint(trained_teacher, tiny_kitti):
    work, _ = trained_teacher
    opts = [o for o in FAST_OPTIONS if not o.startswith('train_cfg.')]
    proc = run_tool(['PYTHON', 'tools/train.py', TEACHER, '--work-dir',
                     str(work), '--data-root', str(tiny_kitti), '--resume',
                     '--cfg-options', 'train_cfg.max_epochs=2', *opts])
    log = proc.stdout + proc.stderr
    assert 'resumed epoch: 1, iter: 2' in log
    assert 'Epoch(train) [2][2/2]' in log
    assert (work / 'epoch_2.pth').is_file()


def test_missing_checkpoint_is_a_clear_error(tiny_kitti, tmp_path):
    proc = run_tool(['PYTHON', 'tools/test.py', TEACHER,
                     str(tmp_path / 'nope.pth'), '--data-root',
                     str(tiny_kitti)], check=False)
    assert proc.returncode != 0
    assert 'Checkpoint not found' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_missing_dataset_is_a_clear_error(tmp_path):
    proc = run_tool(['PYTHON', 'tools/train.py', TEACHER, '--data-root',
                     str(tmp_path / 'absent')], check=False)
    assert proc.returncode != 0
    assert 'Dataset not found' in proc.stderr
    assert 'python tools/create_demo_data.py --out-dir' in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_unknown_cfg_option_is_a_clear_error(tiny_kitti):
    proc = run_tool(['PYTHON', 'tools/train.py', TEACHER, '--data-root',
                     str(tiny_kitti), '--cfg-options',
                     'train_cfg.max_epoch=1'], check=False)
    assert proc.returncode != 0
    assert "'train_cfg.max_epochs'" in proc.stderr
    assert 'Traceback' not in proc.stderr


def test_two_process_training_syncs_gradients(tiny_kitti, tmp_path):
    """dist_train.sh with 2 processes (gloo): each rank trains on its own half
    of the data, both end with identical weights (gradients are averaged),
    and one checkpoint is written."""
    cfg = tmp_path / 'dist_teacher.py'
    cfg.write_text(
        f"_base_ = ['{Path(TEACHER).resolve()}']\n"
        "custom_imports = dict(imports=['pointdistiller_mm', "
        "'tests.helpers.param_checksum_hook'], allow_failed_imports=False)\n"
        "custom_hooks = [dict(type='ParamChecksumHook')]\n")
    work = tmp_path / 'work'
    proc = run_tool(['bash', 'tools/dist_train.sh', str(cfg), '2',
                     '--work-dir', str(work), '--data-root', str(tiny_kitti),
                     '--cfg-options', *FAST_OPTIONS,
                     'train_dataloader.batch_size=1'],
                    timeout=900)
    log = proc.stdout + proc.stderr
    assert 'gloo' in log
    sums = [float((work / f'param_checksum_rank{r}.txt').read_text())
            for r in (0, 1)]
    assert sums[0] == sums[1]
    shards = [set((work / f'shard_rank{r}.txt').read_text().split())
              for r in (0, 1)]
    assert not shards[0] & shards[1]  # the ranks train on different data
    assert shards[0] | shards[1] == {'0', '1', '2', '3'}
    assert sorted(p.name for p in work.glob('*.pth')) == ['epoch_1.pth']


def test_create_data_runs_mmdet3d_tool_on_kitti_layout(tiny_kitti, tmp_path):
    """tools/create_data.py (mmdet3d's create_data, unmodified) converts a
    raw KITTI-layout folder: info files, reduced scans, GT database."""
    import shutil
    root = tmp_path / 'kitti'
    for sub in ('ImageSets', 'training', 'testing'):
        shutil.copytree(tiny_kitti / sub, root / sub,
                        ignore=shutil.ignore_patterns('velodyne_reduced'))
    run_tool(['PYTHON', 'tools/create_data.py', 'kitti', '--root-path',
              str(root), '--out-dir', str(root), '--extra-tag', 'kitti'])
    for name in ('kitti_infos_train.pkl', 'kitti_infos_val.pkl',
                 'kitti_infos_test.pkl', 'kitti_dbinfos_train.pkl'):
        assert (root / name).is_file(), name
    assert len(list((root / 'training' / 'velodyne_reduced').glob('*.bin'))) \
        == 6
    assert list((root / 'kitti_gt_database').glob('*_Car_*.bin'))
