# Cylinder3D teacher of the demo: mmdet3d's stock Cylinder3D (SegVFE +
# Asymm3DSpconv, base width 32, Cylinder3DHead with CE + Lovasz losses, the
# AdamW optimizer of cylinder3d_4xb4-3x_semantickitti.py) on the synthetic
# SemanticKITTI-format data in data/demo_semantickitti
# (python tools/create_demo_data.py --dataset semantickitti), with a coarser
# cylindrical grid and a short schedule so that it trains on a 2-core CPU.
# The stock config file itself cannot be a second base next to the demo data
# base: both inherit mmdet3d's semantickitti dataset file and mmengine refuses
# keys defined by two bases, so this file takes its model and runtime bases.
_base_ = [
    './_base_/semantickitti_demo.py',
    'mmdet3d::_base_/models/cylinder3d.py',
    'mmdet3d::_base_/default_runtime.py',
]

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

# (rho, phi, z) cells over rho 0-50 m, 360 deg, z -4..2 m; stock 480x360x32.
# About 5k occupied cells per 120k-point demo scan (stock grid: 28k).
grid_shape = [120, 90, 16]
base_channels = 32  # Asymm3DSpconv width (init_size); the head sees 4x it

model = dict(
    data_preprocessor=dict(voxel_layer=dict(grid_shape=grid_shape)),
    voxel_encoder=dict(grid_shape=grid_shape),
    backbone=dict(grid_size=grid_shape, base_channels=base_channels),
    decode_head=dict(channels=4 * base_channels))

# Training scans are subsampled to 20k of their ~120k points (PointSample):
# the SegVFE point MLP costs 6x less and the occupied cells drop from ~5.1k to
# ~3.7k per scan. Validation and test keep every point (SegMetric scores each
# point of the scan).
num_train_points = 20000
backend_args = None
train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4,
         backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=False, with_label_3d=False,
         with_seg_3d=True, seg_3d_dtype='np.int32', seg_offset=2**16,
         dataset_type='semantickitti', backend_args=backend_args),
    dict(type='PointSegClassMapping'),
    dict(type='PointSample', num_points=num_train_points),
    dict(type='RandomFlip3D', sync_2d=False, flip_ratio_bev_horizontal=0.5,
         flip_ratio_bev_vertical=0.5),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.78539816, 0.78539816],
         scale_ratio_range=[0.95, 1.05], translation_std=[0.1, 0.1, 0.1]),
    dict(type='Pack3DDetInputs', keys=['points', 'pts_semantic_mask'])
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))

# schedule: stock optimizer, short warm-up, one step decay (last epoch).
# On the shared 2-core CPU an iteration (batch 2) takes 30-80 s depending on
# the load, so the schedule is 3 epochs of the 40 training scans (60
# iterations); a validation pass over the 16 full val scans costs several
# iterations, hence once, at the end.
epoch_num = 3
lr = 0.001
optim_wrapper = dict(
    type='OptimWrapper',
    optimizer=dict(type='AdamW', lr=lr, weight_decay=0.01))
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=10),
    dict(type='MultiStepLR', begin=0, end=epoch_num, by_epoch=True,
         milestones=[epoch_num - 1], gamma=0.1)
]
train_cfg = dict(type='EpochBasedTrainLoop', max_epochs=epoch_num,
                 val_interval=epoch_num)
val_cfg = dict(type='ValLoop')
test_cfg = dict(type='TestLoop')

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=5),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_last=True))
log_processor = dict(window_size=5)
