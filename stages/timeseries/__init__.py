"""Store-sales forecasting (Kaggle `store-sales-time-series-forecasting`, Favorita): daily sales
of stores x product families, 16 days ahead; seasonal naive, SARIMAX, Prophet, an RNN and
gradient boosting, RMSLE."""

# Steps that run on the GPU (the GRU): the orchestrator gives each the GPU's one slot.
ACCELERATED_STEPS = ("train",)
