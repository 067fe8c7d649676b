# nuScenes PointPillars with FPN (mmdet3d's 10-class config) on the synthetic
# nuScenes data (python tools/create_demo_data.py --dataset nuscenes), with a
# reduced range, coarser pillars, fewer sweeps and a short schedule so that it
# trains on a 2-core CPU. Teachers and students of the nuScenes demo inherit
# this file and change only widths (students) or the distillation recipe.
_base_ = ['mmdet3d::pointpillars/pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py']

custom_imports = dict(imports=['pointdistiller_mm'], allow_failed_imports=False)

data_root = 'data/demo_nuscenes/'
class_names = [
    'car', 'truck', 'trailer', 'bus', 'construction_vehicle', 'bicycle',
    'motorcycle', 'pedestrian', 'traffic_cone', 'barrier'
]
# the tables are v1.0-mini: NuScenesMetric picks the devkit version (and the
# mini_val split) from the dataset's metainfo
metainfo = dict(classes=class_names, version='v1.0-mini')
data_prefix = dict(pts='samples/LIDAR_TOP', img='', sweeps='sweeps/LIDAR_TOP')
backend_args = None
# 64 m x 64 m around the car with 0.5 m pillars: a 128 x 128 grid (the stock
# config: 100 m x 100 m, 0.25 m, 400 x 400); FPN level 0 is 64 x 64 cells
point_cloud_range = [-32, -32, -5, 32, 32, 3]
voxel_size = [0.5, 0.5, 8]
bev_shape = [128, 128]
max_points_per_pillar = 32
# LiDAR sweeps merged per keyframe (stock: 10, half a second at 20 Hz)
sweeps_num = 4

# schedule (epochs over the RepeatDataset below)
epoch_num = 12
lr = 0.001
batch_size = 2
num_workers = 2
repeat_times = 2
warmup_iters = 100

model = dict(
    data_preprocessor=dict(
        voxel_layer=dict(
            max_num_points=max_points_per_pillar,
            point_cloud_range=point_cloud_range,
            voxel_size=voxel_size,
            max_voxels=(16000, 16000))),
    pts_voxel_encoder=dict(
        voxel_size=voxel_size, point_cloud_range=point_cloud_range),
    pts_middle_encoder=dict(output_shape=bev_shape),
    pts_bbox_head=dict(
        anchor_generator=dict(ranges=[[-32, -32, -1.8, 32, 32, -1.8]])))

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=backend_args),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=sweeps_num,
         backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.3925, 0.3925],
         scale_ratio_range=[0.95, 1.05], translation_std=[0, 0, 0]),
    dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectNameFilter', classes=class_names),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs',
         keys=['points', 'gt_bboxes_3d', 'gt_labels_3d'])
]
test_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=5, use_dim=5,
         backend_args=backend_args),
    dict(type='LoadPointsFromMultiSweeps', sweeps_num=sweeps_num,
         test_mode=True, backend_args=backend_args),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='Pack3DDetInputs', keys=['points'])
]

train_dataloader = dict(
    _delete_=True,
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    sampler=dict(type='DefaultSampler', shuffle=True),
    dataset=dict(
        type='RepeatDataset',
        times=repeat_times,
        dataset=dict(
            type='NuScenesDataset',
            data_root=data_root,
            ann_file='nuscenes_infos_train.pkl',
            pipeline=train_pipeline,
            metainfo=metainfo,
            modality=dict(use_lidar=True, use_camera=False),
            test_mode=False,
            data_prefix=data_prefix,
            box_type_3d='LiDAR',
            backend_args=backend_args)))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline,
                 metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(data_root=data_root,
                     ann_file=data_root + 'nuscenes_infos_val.pkl')
test_evaluator = val_evaluator

optim_wrapper = dict(optimizer=dict(lr=lr))
# mmdet3d's 2x nuScenes schedule (linear warm-up, steps at 20 / 23 of 24
# epochs), scaled to epoch_num
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 1000, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='MultiStepLR', begin=0, end=epoch_num, by_epoch=True,
         milestones=[int(epoch_num * 20 / 24), int(epoch_num * 23 / 24)],
         gamma=0.1)
]
train_cfg = dict(max_epochs=epoch_num, val_begin=1, val_interval=epoch_num)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_last=True),
    # large tensors from glibc's heap instead of a fresh mmap each step (no
    # page faults; the heap is trimmed every 50 steps): see MallocTrimHook
    heap=dict(type='MallocTrimHook', interval=50, reuse_freed=True))
log_processor = dict(window_size=10)
