# Demo quarter student (W8): every width of the demo teacher divided by 4
# (8, 16, 32, 64 | 64, 32, 24, 24). Trained alone it is the no-KD baseline.
_base_ = ['./minkunet34_w32_teacher_demo.py']

model = dict(
    backbone=dict(
        base_channels=8,
        encoder_channels=[8, 16, 32, 64],
        decoder_channels=[64, 32, 24, 24]),
    decode_head=dict(channels=24))
