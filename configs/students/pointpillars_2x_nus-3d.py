# 2x-compressed PointPillars student on nuScenes (10 classes): every width
# of mmdet3d's stock nuScenes PointPillars with FPN divided by sqrt(2),
# rounded up (pillar encoder [46, 46], backbone [46, 91, 182], FPN and head
# 182: the FPN width of the official PointDistiller nuScenes student).
# Trained alone (python tools/train.py THIS_CONFIG) it is the no-KD baseline
# of configs/pointdistiller/pointpillars_nus_2x.py.
_base_ = ['mmdet3d::pointpillars/pointpillars_hv_fpn_sbn-all_8xb4-2x_nus-3d.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    pts_voxel_encoder=dict(feat_channels=[46, 46]),
    pts_middle_encoder=dict(in_channels=46),
    pts_backbone=dict(in_channels=46, out_channels=[46, 91, 182]),
    pts_neck=dict(in_channels=[46, 91, 182], out_channels=182),
    pts_bbox_head=dict(in_channels=182, feat_channels=182))
