"""AVA data: file formats, constants, video decoding, sampling, transforms, datasets."""
