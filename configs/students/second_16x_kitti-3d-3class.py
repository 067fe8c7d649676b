# 16x-compressed SECOND student on KITTI (3 classes): every width of mmdet3d's
# stock 3-class SECOND divided by 4 = sqrt(16). The sparse encoder's output
# (32 channels x 2 height cells) gives the backbone 64 input channels.
# Trained alone it is the no-KD baseline of
# configs/pointdistiller/second_16x.py.
_base_ = ['mmdet3d::second/'
          'second_hv_secfpn_8xb6-80e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    middle_encoder=dict(
        base_channels=4,
        encoder_channels=((4, ), (8, 8, 8), (16, 16, 16), (16, 16, 16)),
        output_channels=32),
    backbone=dict(in_channels=64, out_channels=[32, 64]),
    neck=dict(in_channels=[32, 64], out_channels=[64, 64]),
    bbox_head=dict(in_channels=128, feat_channels=128))
