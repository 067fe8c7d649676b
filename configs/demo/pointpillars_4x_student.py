# 4x-compressed PointPillars student on the demo data (every width divided
# by 2 = sqrt(4)). Trained alone it is the no-KD baseline of the demo.
_base_ = ['./_base_/pointpillars_demo_kitti.py']

model = dict(
    voxel_encoder=dict(feat_channels=[32]),
    middle_encoder=dict(in_channels=32),
    backbone=dict(in_channels=32, out_channels=[32, 64, 128]),
    neck=dict(in_channels=[32, 64, 128], out_channels=[64, 64, 64]),
    bbox_head=dict(in_channels=192, feat_channels=192))
