# Smaller3D on the demo data, Table 2 column "Half, alpha 0.5, T 1, +
# decoder and encoder losses" (encoder bottleneck 128 -> 256 channels). Both
# feature losses normalized by the teacher map's mean square (see
# smaller3d_w16_a05_dec_demo.py for the measurements behind it).
_base_ = ['./smaller3d_w16_a05_dec_demo.py']

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
                normalize='teacher',
                loss_weight=1.0))))
