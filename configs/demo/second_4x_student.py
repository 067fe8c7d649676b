# 4x-compressed SECOND student on the demo data (every width divided by
# 2 = sqrt(4)). Trained alone it is the no-KD baseline of the demo.
_base_ = ['./_base_/second_demo_kitti.py']

model = dict(
    middle_encoder=dict(
        base_channels=8,
        encoder_channels=((8, ), (16, 16, 16), (32, 32, 32), (32, 32, 32)),
        output_channels=64),
    backbone=dict(in_channels=128, out_channels=[64, 128]),
    neck=dict(in_channels=[64, 128], out_channels=[128, 128]),
    bbox_head=dict(in_channels=256, feat_channels=256))
