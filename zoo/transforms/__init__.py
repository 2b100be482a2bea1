"""Graph transforms and the operators they compute, in pure torch / PyG.

The lowest wing of the package beside :mod:`zoo.errors`: it imports nothing else from Zoo, so both the
DataModules (features) and the networks (:mod:`zoo.nets`) may use it.
"""
