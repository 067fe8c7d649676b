# PVD on SemanticKITTI: the Cylinder3D 0.5x student
# (configs/students/cylinder3d_0.5x_semantickitti.py) learns from mmdet3d's
# published Cylinder3D (63.1 mIoU) with the terms, coefficients and
# sampling settings of pvd_cylinder3d_0.5x_demo.py; the student's schedule
# is kept.
_base_ = ['../../../configs/students/cylinder3d_0.5x_semantickitti.py']

custom_imports = dict(
    imports=['pointdistiller_mm', 'projects.PVD.pvd'],
    allow_failed_imports=False)

teacher_config = 'projects/PVD/configs/teachers/cylinder3d_4xb4-3x_semantickitti.py'
# mmdet3d's published checkpoint of that config (configs/cylinder3d/
# metafile.yml in the mmdet3d wheel)
teacher_checkpoint = (
    'https://download.openmmlab.com/mmdetection3d/v1.1.0_models/cylinder3d/'
    'cylinder3d_4xb4_3x_semantickitti/'
    'cylinder3d_4xb4_3x_semantickitti_20230318_191107-822a8c31.pth')

alpha1, alpha2, beta1, beta2 = 0.1, 0.15, 0.15, 0.25
temperature = 1.0
sampler = dict(
    type='SupervoxelSampler',
    supervoxel_size=(20, 15, 8),
    num_samples=64,
    minority_classes=(1, 2, 3, 4, 5, 6, 7, 17, 18),
    class_a=5.0,
    class_b=-2.0,
    minor_measure='inverse_count',
    max_range=50.0,
    dist_coef=1.0)
rows = dict(type='Cylinder3DRows')
pvd_terms = dict(
    out_p=dict(student='logits', teacher='logits', rows=rows,
               loss=dict(type='PointOutputKDLoss', temperature=temperature,
                         loss_weight=alpha1)),
    out_v=dict(student='logits', teacher='logits', rows=rows,
               loss=dict(type='VoxelOutputKDLoss', voxel_size=(1, 1, 1),
                         temperature=temperature, loss_weight=alpha2)),
    aff_p=dict(student='feats', teacher='feats', rows=rows,
               loss=dict(type='PointAffinityLoss', sampler=sampler,
                         max_points=256, loss_weight=beta1)),
    aff_v=dict(student='feats', teacher='feats', rows=rows,
               loss=dict(type='VoxelAffinityLoss', sampler=sampler,
                         max_voxels=256, loss_weight=beta2)))
recorders = dict(
    logits=dict(source='decode_head.conv_seg'),
    feats=dict(source='backbone'))

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    teacher_forward='loss',
    student_recorders=recorders,
    teacher_recorders=recorders,
    distill_terms=pvd_terms)

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
