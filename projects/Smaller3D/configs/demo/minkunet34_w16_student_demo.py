# Demo half student (W16): every width of the demo teacher halved (16, 32,
# 64, 128 | 128, 64, 48, 48). Trained alone it is the demo's no-KD baseline.
_base_ = ['./minkunet34_w32_teacher_demo.py']

model = dict(
    backbone=dict(
        base_channels=16,
        encoder_channels=[16, 32, 64, 128],
        decoder_channels=[128, 64, 48, 48]),
    decode_head=dict(channels=48))
