"""Readable errors for bad configs, missing datasets and checkpoints."""
import copy
import os.path as osp

import pytest
from mmengine.config import Config

from pointdistiller_mm.utils import (ConfigError, check_cfg_options,
                                     check_checkpoint, check_datasets,
                                     load_config, replace_data_root)

TEACHER = 'configs/demo/pointpillars_teacher.py'


@pytest.fixture(scope='module')
def teacher_cfg() -> Config:
    return load_config(TEACHER)


def test_unknown_cfg_option_lists_closest_key(teacher_cfg):
    with pytest.raises(ConfigError) as err:
        check_cfg_options(teacher_cfg, {'train_cfg.max_epoch': 2})
    msg = str(err.value)
    assert "'max_epoch' is not a key of 'train_cfg'" in msg
    assert "'train_cfg.max_epochs'" in msg


def test_known_cfg_options_pass(teacher_cfg):
    check_cfg_options(teacher_cfg, {
        'train_cfg.max_epochs': 2,
        'model.voxel_encoder.feat_channels': [32],
        'param_scheduler.0.T_max': 3,
    })


def test_list_index_out_of_range(teacher_cfg):
    with pytest.raises(ConfigError, match='index 9 is out of range'):
        check_cfg_options(teacher_cfg, {'param_scheduler.9.T_max': 3})


def test_missing_dataset_names_path_and_command(teacher_cfg, tmp_path):
    cfg = copy.deepcopy(teacher_cfg)
    cfg.train_dataloader.dataset.dataset.data_root = str(tmp_path / 'nowhere')
    with pytest.raises(ConfigError) as err:
        check_datasets(cfg, ('train_dataloader', ))
    msg = str(err.value)
    assert osp.join(str(tmp_path / 'nowhere'), 'kitti_infos_train.pkl') in msg
    assert 'python tools/create_demo_data.py --out-dir' in msg
    assert 'tools/create_data.py kitti' in msg
    assert 'train_dataloader.dataset.dataset.data_root' in msg


def test_missing_db_sampler_info_is_reported(teacher_cfg, tmp_path):
    cfg = copy.deepcopy(teacher_cfg)
    root = tmp_path / 'demo'
    root.mkdir()
    (root / 'kitti_infos_train.pkl').write_bytes(b'')
    replace_data_root(cfg, str(root))  # the GT database path moves too
    with pytest.raises(ConfigError, match='kitti_dbinfos_train.pkl'):
        check_datasets(cfg, ('train_dataloader', ))


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    ckpt = str(tmp_path / 'epoch_3.pth')
    with pytest.raises(ConfigError) as err:
        check_checkpoint(ckpt, TEACHER)
    msg = str(err.value)
    assert ckpt in msg and f'python tools/train.py {TEACHER}' in msg
    check_checkpoint('https://example.org/model.pth', TEACHER)  # URLs pass


def test_missing_config_suggests_close_names():
    with pytest.raises(ConfigError, match='pointpillars_teacher.py'):
        load_config('configs/demo/pointpillars_teachr.py')


@pytest.mark.parametrize('dataset_type, flag, converter', [
    ('SemanticKittiDataset', '--dataset semantickitti',
     'tools/create_data.py semantickitti'),
    ('NuScenesDataset', '--dataset nuscenes', 'tools/create_data.py nuscenes'),
])
def test_missing_dataset_hint_names_its_generator(tmp_path, dataset_type,
                                                  flag, converter):
    root = str(tmp_path / 'nowhere')
    cfg = Config(dict(train_dataloader=dict(dataset=dict(
        type=dataset_type, data_root=root, ann_file='infos_train.pkl'))))
    with pytest.raises(ConfigError) as err:
        check_datasets(cfg, ('train_dataloader', ))
    msg = str(err.value)
    assert f'python tools/create_demo_data.py {flag} --out-dir {root}' in msg
    assert converter in msg
