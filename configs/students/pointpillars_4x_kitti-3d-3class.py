# 4x-compressed PointPillars student on KITTI (3 classes): every width of
# mmdet3d's stock 3-class PointPillars divided by 2 = sqrt(4). Trained alone
# (python tools/train.py THIS_CONFIG) it is the no-KD baseline of
# configs/pointdistiller/pointpillars_4x.py.
_base_ = ['mmdet3d::pointpillars/'
          'pointpillars_hv_secfpn_8xb6-160e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    voxel_encoder=dict(feat_channels=[32]),
    middle_encoder=dict(in_channels=32),
    backbone=dict(in_channels=32, out_channels=[32, 64, 128]),
    neck=dict(in_channels=[32, 64, 128], out_channels=[64, 64, 64]),
    bbox_head=dict(in_channels=192, feat_channels=192))
