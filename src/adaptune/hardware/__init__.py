"""The machine: which precision and compilation a study trains under (decided once, by timing
or by the GPU's compute capability), and which GPU each job gets.

probe        CPU flags and name
precision    the precision decision, and preparing a model for it
compilation  torch.compile with caches shared by a study's jobs
devices      one GPU per job, by lock files
"""
