# Quarter student (W8) with the full Smaller3D recipe: logit KD at alpha 0.5
# plus encoder (64 -> 256) and decoder (24 -> 96) feature-map losses.
_base_ = ['./smaller3d_w8_a1_semantickitti.py']

model = dict(
    student_recorders=dict(
        encoder=dict(source='backbone.encoder.3'),
        decoder=dict(source='backbone.decoder.3.1')),
    teacher_recorders=dict(
        encoder=dict(source='backbone.encoder.3'),
        decoder=dict(source='backbone.decoder.3.1')),
    distill_terms=dict(
        kd=dict(loss=dict(alpha=0.5)),
        encoder=dict(
            student='encoder',
            teacher='encoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=64,
                teacher_channels=256,
                loss_weight=1.0)),
        decoder=dict(
            student='decoder',
            teacher='decoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=24,
                teacher_channels=96,
                loss_weight=1.0))))
