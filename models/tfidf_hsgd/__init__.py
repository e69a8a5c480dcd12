"""tfidf_hsgd: tf-idf + one SGD classifier per parent node, predicted top down."""

from ktt_models.tfidf_hsgd.tfidf_hsgd import TfidfHSGD

__all__ = ["TfidfHSGD"]
