# The demo quarter student (W8) with the full Smaller3D recipe: logit KD at
# alpha 0.5, encoder (64 -> 256) and decoder (24 -> 96) feature losses,
# normalized by the teacher map's mean square (see
# smaller3d_w16_a05_dec_demo.py).
_base_ = ['./minkunet34_w8_student_demo.py']

teacher_config = 'projects/Smaller3D/configs/demo/minkunet34_w32_teacher_20e_demo.py'  # noqa: E501
teacher_checkpoint = 'work_dirs/demo/minkunet_w32_teacher_20e'

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    teacher_forward='tensor',
    student_recorders=dict(
        logits=dict(source='decode_head.conv_seg'),
        encoder=dict(source='backbone.encoder.3'),
        decoder=dict(source='backbone.decoder.3.1')),
    teacher_recorders=dict(
        logits=dict(source='decode_head.conv_seg'),
        encoder=dict(source='backbone.encoder.3'),
        decoder=dict(source='backbone.decoder.3.1')),
    distill_terms=dict(
        kd=dict(
            student='logits',
            teacher='logits',
            rows=dict(type='VoxelLogitRows'),
            loss=dict(
                type='Smaller3DLogitKDLoss',
                alpha=0.5,
                temperature=1.0,
                form='paper',
                loss_weight=1.0)),
        encoder=dict(
            student='encoder',
            teacher='encoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=64,
                teacher_channels=256,
                normalize='teacher',
                loss_weight=1.0)),
        decoder=dict(
            student='decoder',
            teacher='decoder',
            rows=dict(type='SparseRows'),
            loss=dict(
                type='SparseFeatureMSELoss',
                student_channels=24,
                teacher_channels=96,
                normalize='teacher',
                loss_weight=1.0))))
