# PVD supplementary Table 3 ablation: the aff_p term alone (its Table 4
# coefficient), on the demo set-up of pvd_cylinder3d_0.5x_demo.py. The row
# without any term is the plain student (configs/demo/cylinder3d_0.5x_student.py).
_base_ = ['./pvd_cylinder3d_0.5x_demo.py']

model = dict(
    distill_terms=dict(_delete_=True, aff_p={{_base_.pvd_terms.aff_p}}))
