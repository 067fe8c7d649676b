# 16x-compressed PointPillars student on the demo data (every width divided
# by 4 = sqrt(16)). Trained alone it is the no-KD baseline of the demo.
_base_ = ['./_base_/pointpillars_demo_kitti.py']

model = dict(
    voxel_encoder=dict(feat_channels=[16]),
    middle_encoder=dict(in_channels=16),
    backbone=dict(in_channels=16, out_channels=[16, 32, 64]),
    neck=dict(in_channels=[16, 32, 64], out_channels=[32, 32, 32]),
    bbox_head=dict(in_channels=96, feat_channels=96))
