"""Telecom churn (Kaggle `advanced-dls-spring-2021`, from IBM Telco): tabular binary
classification, an ensemble of logistic regression, random forests and CatBoost, ROC-AUC."""
