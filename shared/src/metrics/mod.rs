//! Classification metrics with confidence intervals, checked against scikit-learn.
