"""nlpkit: recurrent-network NLP for Keras 3 / TensorFlow, from text files to TFLite.

The package root imports nothing heavy, so ``nlpkit.lite`` can run without TensorFlow.
"""

__version__ = "0.1.0"
