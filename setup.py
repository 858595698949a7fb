"""Package definition for musicvae_xai."""

from setuptools import find_packages, setup

setup(
    name="musicvae_xai",
    version="0.1.0",
    description="Explainable measure-level music VAEs: MeasureVAE and an adversarial Fader-style VAE, "
                "with evaluation, latent traversals, TF-Serving export and an explorer.",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    python_requires=">=3.10,<3.13",
    packages=find_packages(include=["musicvae_xai", "musicvae_xai.*"]),
    include_package_data=True,
    package_data={"musicvae_xai": ["embedded_data/*", "explorer/static/*"]},
    install_requires=[
        "tensorflow==2.21.*",
        "tensorflow-probability==0.25.*",
        "tf-keras==2.21.*",  # tensorflow-probability imports it at start-up
        "keras>=3.12,<4",
        "note-seq==0.0.5",
        "music21>=9.1,<11",
        "absl-py>=2.1",
        "numpy>=1.26,<3",
        "scipy>=1.11",
        "scikit-learn>=1.4",
        "tensorboard==2.21.*",
        "matplotlib>=3.8",
        "tensorflow-serving-api==2.21.*",
        "tqdm>=4.66",
        "flask>=3.0,<4",
    ],
    extras_require={
        "test": ["pytest>=8", "pytest-timeout>=2.3", "playwright>=1.45,<2", "mido>=1.3"],
    },
    license="Apache-2.0",
)
