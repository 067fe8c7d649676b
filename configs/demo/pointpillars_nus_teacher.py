# Teacher of the nuScenes demo: mmdet3d's stock nuScenes PointPillars with
# FPN (10 classes) on the synthetic nuScenes data in data/demo_nuscenes
# (python tools/create_demo_data.py --dataset nuscenes creates it), on the
# demo's 64 m x 64 m range and 0.5 m pillars. It trains twice as long as the
# students (24 epochs, 1,440 steps of batch 2): after 480 steps it found only
# cars (NuScenesMetric mAP 0.0097, NDS 0.046).
_base_ = ['./_base_/pointpillars_demo_nus.py']

epoch_num = 24
# the base file's schedule, rebuilt for epoch_num
param_scheduler = [
    dict(type='LinearLR', start_factor=1.0 / 1000, by_epoch=False, begin=0,
         end={{_base_.warmup_iters}}),
    dict(type='MultiStepLR', begin=0, end=epoch_num, by_epoch=True,
         milestones=[int(epoch_num * 20 / 24), int(epoch_num * 23 / 24)],
         gamma=0.1)
]
train_cfg = dict(max_epochs=epoch_num, val_interval=epoch_num)
