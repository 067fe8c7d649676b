# Quarter student (Smaller3D's Res16UNet34C_Quarter): every width of the W32
# teacher divided by 4 (8, 16, 32, 64 | 64, 32, 24, 24), depth unchanged;
# about 16x fewer parameters. Trained alone it is the no-KD baseline.
_base_ = ['./minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']

model = dict(
    backbone=dict(
        base_channels=8,
        encoder_channels=[8, 16, 32, 64],
        decoder_channels=[64, 32, 24, 24]),
    decode_head=dict(channels=24))
