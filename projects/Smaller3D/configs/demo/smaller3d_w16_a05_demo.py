# Smaller3D on the demo data, Table 2 column "Half, alpha 0.5, T 1".
_base_ = ['./smaller3d_w16_a1_demo.py']

model = dict(distill_terms=dict(kd=dict(loss=dict(alpha=0.5))))
