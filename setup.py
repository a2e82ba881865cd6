from setuptools import find_packages, setup

setup(
    name="ava_detect",
    version="0.1.0",
    description="Spatiotemporal action detection on AVA-style video: SlowFast + RoI head, "
    "official frame-mAP evaluation, training, and annotation of your own clips.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.9",
    packages=find_packages(include=["ava_detect", "ava_detect.*", "data_prep", "data_prep.*"]) + ["ava_detect.configs"],
    # The experiment configs stay in the top-level configs/ folder and ship inside the package as
    # ava_detect/configs (found at run time by ava_detect.config.packaged_config).
    package_dir={"ava_detect.configs": "configs"},
    package_data={"ava_detect": ["resources/*.pbtxt", "resources/*.css", "resources/*.js"], "ava_detect.configs": ["*.yaml", "**/*.yaml"]},
    include_package_data=True,
    install_requires=[
        # torchvision pins the exact torch it was built for: pip installs them as a matching pair.
        "torch",
        "torchvision",
        "av",
        "numpy",
        "pandas",
        "scipy",
        "pycocotools",
        "pyyaml",
        "omegaconf",
        "tqdm",
        "matplotlib",
        "pillow",
        # CVAT XML is parsed without entity expansion or external entities.
        "defusedxml",
    ],
    extras_require={
        # `ava-detect export --format onnx` (onnx, onnxscript) and `annotate --runtime onnxruntime` (onnxruntime)
        "onnx": ["onnx", "onnxscript", "onnxruntime"],
        "test": ["pytest", "pytorchvideo==0.1.5", "onnx", "onnxscript", "onnxruntime"],
    },
    entry_points={"console_scripts": ["ava-detect=ava_detect.cli:main"]},
)
