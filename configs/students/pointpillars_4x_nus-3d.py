# 4x-compressed PointPillars student on nuScenes (10 classes): every width
# of mmdet3d's stock nuScenes PointPillars with FPN divided by 2 = sqrt(4)
# (pillar encoder [32, 32], backbone [32, 64, 128], FPN and head 128).
# Trained alone (python tools/train.py THIS_CONFIG) it is the no-KD baseline
# of configs/pointdistiller/pointpillars_nus_4x.py.
_base_ = ['mmdet3d::pointpillars/pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    pts_voxel_encoder=dict(feat_channels=[32, 32]),
    pts_middle_encoder=dict(in_channels=32),
    pts_backbone=dict(in_channels=32, out_channels=[32, 64, 128]),
    pts_neck=dict(in_channels=[32, 64, 128], out_channels=128),
    pts_bbox_head=dict(in_channels=128, feat_channels=128))
