# Half student (Smaller3D's Res16UNet34C_Half): every width of the W32 teacher
# halved (16, 32, 64, 128 | 128, 64, 48, 48), depth unchanged; about 4x fewer
# parameters. Trained alone it is the no-KD baseline.
_base_ = ['./minkunet34_w32_spconv_8xb2-laser-polar-mix-3x_semantickitti.py']

model = dict(
    backbone=dict(
        base_channels=16,
        encoder_channels=[16, 32, 64, 128],
        decoder_channels=[128, 64, 48, 48]),
    decode_head=dict(channels=48))
