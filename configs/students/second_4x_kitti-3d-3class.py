# 4x-compressed SECOND student on KITTI (3 classes): every width of mmdet3d's
# stock 3-class SECOND divided by 2 = sqrt(4). The sparse encoder's output
# (64 channels x 2 height cells) gives the backbone 128 input channels.
# Trained alone it is the no-KD baseline of
# configs/pointdistiller/second_4x.py.
_base_ = ['mmdet3d::second/'
          'second_hv_secfpn_8xb6-80e_kitti-3d-3class.py']

custom_imports = dict(
    imports=['pointdistiller_mm'], allow_failed_imports=False)

model = dict(
    middle_encoder=dict(
        base_channels=8,
        encoder_channels=((8, ), (16, 16, 16), (32, 32, 32), (32, 32, 32)),
        output_channels=64),
    backbone=dict(in_channels=128, out_channels=[64, 128]),
    neck=dict(in_channels=[64, 128], out_channels=[128, 128]),
    bbox_head=dict(in_channels=256, feat_channels=256))
