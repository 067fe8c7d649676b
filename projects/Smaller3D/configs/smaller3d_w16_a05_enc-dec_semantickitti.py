# Smaller3D, Table 2 column "Half, alpha 0.5, T 1, + decoder and encoder
# losses" (the paper's best half student, 66.4 mIoU on ScanNet): logit KD,
# the decoder-map loss and the MSE on the encoder bottleneck (the last
# encoder stage, 128 -> 256 channels through a 1x1 sparse convolution).
_base_ = ['./smaller3d_w16_a05_dec_semantickitti.py']

model = dict(
    student_recorders=dict(encoder=dict(source='backbone.encoder.3')),
    teacher_recorders=dict(encoder=dict(source='backbone.encoder.3')),
    distill_terms=dict(
        encoder=dict(
            student='encoder',
            teacher='encoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=128,
                teacher_channels=256,
                loss_weight=1.0))))
