# 16x-compressed PointPillars student on KITTI (3 classes): every width of
# mmdet3d's stock 3-class PointPillars divided by 4 = sqrt(16). Trained alone
# it is the no-KD baseline of configs/pointdistiller/pointpillars_16x.py.
_base_ = ['mmdet3d::pointpillars/'
          'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    voxel_encoder=dict(feat_channels=[16]),
    middle_encoder=dict(in_channels=16),
    backbone=dict(in_channels=16, out_channels=[16, 32, 64]),
    neck=dict(in_channels=[16, 32, 64], out_channels=[32, 32, 32]),
    bbox_head=dict(in_channels=96, feat_channels=96))
