"""tfidf_lsgd: tf-idf + one SGD classifier over the leaf classes."""

from ktt_models.tfidf_lsgd.tfidf_lsgd import TfidfLSGD

__all__ = ["TfidfLSGD"]
