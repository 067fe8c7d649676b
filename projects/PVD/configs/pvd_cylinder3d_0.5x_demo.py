# PVD on the synthetic SemanticKITTI demo: the Cylinder3D 0.5x student
# (configs/demo/cylinder3d_0.5x_student.py, base width 16) learns from the
# demo Cylinder3D teacher (base width 32) through
#   L = L_seg + a1 L_out.p + a2 L_out.v + b1 L_aff.p + b2 L_aff.v
# with the coefficients of the PVD supplementary, Table 4 (Cylinder3D row).
# Every setting the paper leaves open is a field below (defaults documented
# in projects/PVD/README.md).
_base_ = ['../../../configs/demo/cylinder3d_0.5x_student.py']

custom_imports = dict(
    imports=['pointdistiller_mm', 'projects.PVD.pvd'],
    allow_failed_imports=False)

teacher_config = 'configs/demo/cylinder3d_teacher.py'
# a .pth file, a URL, or a work dir (its newest checkpoint is used)
teacher_checkpoint = 'work_dirs/demo/cylinder3d_teacher'

# Table 4 of the PVD supplementary, Cylinder3D
alpha1, alpha2, beta1, beta2 = 0.1, 0.15, 0.15, 0.25
temperature = 1.0  # KL on plain class probabilities
# Difficulty-aware supervoxel sampling, shared by both affinity terms.
sampler = dict(
    type='SupervoxelSampler',
    # network voxels along (rho, phi, z): 24 x 22 x 4 supervoxels on the
    # demo's 120 x 90 x 16 grid (the SemanticKITTI config uses (20, 15, 8)
    # on the stock 480 x 360 x 32 grid: 24 x 24 x 4)
    supervoxel_size=(5, 4, 4),
    num_samples=64,               # K supervoxels per scan
    minority_classes=(1, 2, 3, 4, 5, 6, 7, 17, 18),
    class_a=5.0,                  # f_class = a exp(b / N_minor) + 1
    class_b=-2.0,
    minor_measure='inverse_count',
    max_range=50.0,               # f_dist = 1 + coef * min(d / R, 1)
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
# logits: the decode head's voxel logits; feats: the backbone output, i.e.
# the decode head's input features (one row per voxel)
recorders = dict(
    logits=dict(source='decode_head.conv_seg'),
    feats=dict(source='backbone'))

model = dict(
    _delete_=True,
    type='Distiller3D',
    student={{_base_.model}},
    teacher=dict(config=teacher_config, checkpoint=teacher_checkpoint),
    # Cylinder3D's 'tensor' mode cannot take the voxelized batch; the
    # teacher runs its training forward (losses discarded) under no_grad
    teacher_forward='loss',
    student_recorders=recorders,
    teacher_recorders=recorders,
    distill_terms=pvd_terms)

custom_hooks = [dict(type='DistillLossWeightHook', mode='constant')]
