# 2x-compressed nuScenes PointPillars student on the demo data: every width
# divided by sqrt(2), rounded up (pillar encoder [46, 46], backbone
# [46, 91, 182], FPN and head 182), as in
# configs/students/pointpillars_2x_nus-3d.py.
# Trained alone it is the no-KD baseline of the nuScenes demo.
_base_ = ['./_base_/pointpillars_demo_nus.py']

model = dict(
    pts_voxel_encoder=dict(feat_channels=[46, 46]),
    pts_middle_encoder=dict(in_channels=46),
    pts_backbone=dict(in_channels=46, out_channels=[46, 91, 182]),
    pts_neck=dict(in_channels=[46, 91, 182], out_channels=182),
    pts_bbox_head=dict(in_channels=182, feat_channels=182))
