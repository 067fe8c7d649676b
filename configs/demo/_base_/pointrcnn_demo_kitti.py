# PointRCNN (mmdet3d's 3-class KITTI config: PointNet2SAMSG backbone,
# PointNetFPNeck, PointRPNHead, PointRCNNRoIHead) on the synthetic
# KITTI-format demo data, with the demo's reduced range, fewer sampled
# points, proposals and RoIs so that it trains on one CPU thread (mmcv's
# CUDA-only point ops run through pointdistiller_mm.compat.mmcv_point_ops
# there). Widths and depth are the stock ones; only point, proposal and RoI
# counts and the schedule change.
#
# Cost on one thread (CPU time, batch 2; python
# tools/analysis/bench_point_ops.py --step CONFIG): teacher 2.3 s per
# training step (RoI head forward 0.5 s, RPN proposals 0.3 s, backbone + FP
# neck forward 0.4 s, backward 1.0 s) and 0.7 s per test scan; 8x student
# 0.9 s and 0.4 s; PointDistiller 1.3-1.5 s per step. With 128 RoIs per
# scan, 256 pooled points, 128 / 32 RoI SA centres and 1,024 NMS proposals
# the teacher step took 13 s. The schedule below is 896 steps: at these
# step times about 34 min for the teacher, 14 min for the student and
# 20-22 min for PointDistiller, plus one validation (1.5 / 0.8 / 0.8 min);
# on a later machine, one thread each, the teacher's median step was 4.4 s
# beside two other jobs, the 8x student's 0.82 s and PointDistiller's
# 1.22 s beside each other only.
_base_ = ['mmdet3d::point_rcnn/point-rcnn_8xb2_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

data_root = 'data/demo_kitti/'
class_names = ['Pedestrian', 'Cyclist', 'Car']
metainfo = dict(classes=class_names)
backend_args = None
# the PointPillars demo's 40.96 m x 40.96 m field in front of the car
point_cloud_range = [0, -20.48, -3, 40.96, 20.48, 1]
# points per scan after PointSample (stock 16384) and per SA level (stock
# 4096, 1024, 256, 64): a quarter of each
num_points = 4096
sa_num_points = (1024, 256, 64, 16)
sample_range = 40.0
# RPN proposals into the rotated NMS, training and testing (stock 9000:
# every point's box; mmcv's CPU rotated NMS grows quadratically with it:
# 1,024 took about 1 s per step, 256 0.1 s), and proposals kept after it as
# RoIs in training and testing (stock 512 / 512)
rpn_nms_pre = 256
train_rois = 128
test_rois = 64
# RoIs per scan sampled for the RoI head's loss (stock 128), points pooled
# per RoI (stock 512) and the RoI head's SA centres per RoI (stock 128, 32,
# then all): the RoI head's MLPs run on roi_samples x roi_sa_points[0] x 16
# grouped points, most of a step's work
roi_samples = 32
roi_points = 128
roi_sa_points = (64, 16, -1)

# schedule (epochs over the RepeatDataset below; one epoch is
# repeat_times x 64 scans = 64 steps at batch 2); validation on the 128 val
# scans once, at the end. 14 epochs: 896 steps.
epoch_num = 14
lr = 0.002
batch_size = 2
num_workers = 2
repeat_times = 2
val_interval = epoch_num
warmup_iters = 64

model = dict(
    backbone=dict(num_points=sa_num_points),
    roi_head=dict(
        bbox_roi_extractor=dict(
            roi_layer=dict(type='RoIPointPool3d',
                           num_sampled_points=roi_points)),
        bbox_head=dict(num_points=roi_sa_points)),
    train_cfg=dict(
        rpn=dict(
            rpn_proposal=dict(nms_pre=rpn_nms_pre, nms_post=train_rois)),
        rcnn=dict(sampler=dict(num=roi_samples))),
    test_cfg=dict(
        rpn=dict(nms_cfg=dict(nms_pre=rpn_nms_pre, nms_post=test_rois))))

db_sampler = dict(
    data_root=data_root,
    info_path=data_root + 'kitti_dbinfos_train.pkl',
    rate=1.0,
    prepare=dict(
        filter_by_difficulty=[-1],
        filter_by_min_points=dict(Car=5, Pedestrian=5, Cyclist=5)),
    sample_groups=dict(Car=10, Pedestrian=8, Cyclist=8),
    classes=class_names,
    points_loader=dict(
        type='LoadPointsFromFile',
        coord_type='LIDAR',
        load_dim=4,
        use_dim=4,
        backend_args=backend_args),
    backend_args=backend_args)

train_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4,
         backend_args=backend_args),
    dict(type='LoadAnnotations3D', with_bbox_3d=True, with_label_3d=True),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectSample', db_sampler=db_sampler),
    dict(type='RandomFlip3D', flip_ratio_bev_horizontal=0.5),
    dict(type='ObjectNoise', num_try=100, translation_std=[1.0, 1.0, 0.5],
         global_rot_range=[0.0, 0.0], rot_range=[-0.78539816, 0.78539816]),
    dict(type='GlobalRotScaleTrans', rot_range=[-0.78539816, 0.78539816],
         scale_ratio_range=[0.95, 1.05]),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='ObjectRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PointSample', num_points=num_points,
         sample_range=sample_range),
    dict(type='PointShuffle'),
    dict(type='Pack3DDetInputs', keys=['points', 'gt_bboxes_3d',
                                       'gt_labels_3d'])
]
test_pipeline = [
    dict(type='LoadPointsFromFile', coord_type='LIDAR', load_dim=4, use_dim=4,
         backend_args=backend_args),
    dict(type='PointsRangeFilter', point_cloud_range=point_cloud_range),
    dict(type='PointSample', num_points=num_points,
         sample_range=sample_range),
    dict(type='Pack3DDetInputs', keys=['points'])
]

train_dataloader = dict(
    batch_size=batch_size,
    num_workers=num_workers,
    persistent_workers=True,
    dataset=dict(
        times=repeat_times,
        dataset=dict(data_root=data_root, pipeline=train_pipeline,
                     metainfo=metainfo)))
val_dataloader = dict(
    batch_size=1,
    num_workers=1,
    dataset=dict(data_root=data_root, pipeline=test_pipeline,
                 metainfo=metainfo))
test_dataloader = val_dataloader
val_evaluator = dict(ann_file=data_root + 'kitti_infos_val.pkl')
test_evaluator = val_evaluator

optim_wrapper = dict(
    optimizer=dict(lr=lr, betas=(0.95, 0.85)),
    clip_grad=dict(max_norm=35, norm_type=2))
# Linear warm-up, then cosine decay to 1 % of lr, momentum constant.
# mmdet3d's cyclic schedule (up to ten times lr, then down) squeezed into
# 384 steps made single steps' loss jump to 1,865 and 67,233 and the
# teacher did not learn (moderate AP40 mAP 3D 0.02).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.1, by_epoch=False, begin=0,
         end=warmup_iters),
    dict(type='CosineAnnealingLR', T_max=epoch_num, eta_min=lr * 0.01,
         begin=0, end=epoch_num, by_epoch=True, convert_to_iter_based=True)
]
train_cfg = dict(
    by_epoch=True, max_epochs=epoch_num, val_interval=val_interval)

default_hooks = dict(
    logger=dict(type='LoggerHook', interval=10),
    checkpoint=dict(type='CheckpointHook', interval=1, max_keep_ckpts=2,
                    save_last=True))
log_processor = dict(window_size=10)
# glibc keeps the freed blocks of PointRCNN's step-to-step tensor shapes:
# without this hook a one-thread demo run grew to 9-10 GB of resident memory
custom_hooks = [dict(type='MallocTrimHook', interval=10)]
