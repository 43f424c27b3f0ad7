"""Training stage of the bundled styles: conditional GANs that learn classical stylisation filters.

Photographs bundled with scikit-image are paired with an OpenCV filter's rendering of them; a
zoo generator learns the mapping against a PatchGAN discriminator plus an L1 term, and the result
is saved in its family's original checkpoint format for the export pipeline.
"""
