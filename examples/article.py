"""The article's steps 1-8, exactly as written there, then the same with this library.

"How to Build a Simple ML Model from Scratch" fits ``price = m * size + b`` to three houses:
the sizes are min-max scaled, ``m`` and ``b`` start at 0, and gradient descent runs for
1,000 epochs at learning rate 0.01, summing the gradient row by row and printing the cost every
100 epochs. The second half does the same with ``LinearRegression(solver="gd")``, which
computes the same epochs from the data's sufficient statistics, and shows that they agree.

Run: ``.venv/bin/python examples/article.py`` (``make venv`` installs the library).
"""

from __future__ import annotations

import numpy as np

from model.linear import LinearRegression

# Step 1: the problem. Predict a house's sale price from its size.
# Step 2: the data. Three houses: size in square feet, price in dollars.
sizes = [1400.0, 1600.0, 1700.0]
prices = [245000.0, 312000.0, 279000.0]

# Step 3: prepare the data. Min-max scaling puts every size in [0, 1].
lo, hi = min(sizes), max(sizes)
x = [(s - lo) / (hi - lo) for s in sizes]
y = prices
n = len(x)

# Step 4: the model, a straight line price = m * size + b, starting from m = b = 0.
m, b = 0.0, 0.0

# Step 5: the hyperparameters.
learning_rate = 0.01
epochs = 1000

# Steps 6-7: the cost (mean squared error) and gradient descent, one row at a time.
for epoch in range(1, epochs + 1):
    dm, db = 0.0, 0.0
    for xi, yi in zip(x, y, strict=True):
        dm += -2 / n * xi * (yi - (m * xi + b))
        db += -2 / n * (yi - (m * xi + b))
    m -= learning_rate * dm
    b -= learning_rate * db
    cost = sum((yi - (m * xi + b)) ** 2 for xi, yi in zip(x, y, strict=True)) / n
    if epoch % 100 == 0:
        print(f"Epoch {epoch}, Cost: {cost}")

# Step 8: the trained model, and a prediction for a 1,500 sq ft house.
print(f"m = {m:.4f}, b = {b:.4f}")
size = 1500.0
print(f"predicted price of {size:.0f} sq ft: ${m * (size - lo) / (hi - lo) + b:,.0f}")

# The same with the library: the same epochs, from X^T X and X^T y instead of a loop per row.
model = LinearRegression(solver="gd", learning_rate=learning_rate, n_epochs=epochs, tol=None)
model.fit(np.array(x).reshape(-1, 1), np.array(y))
print(f"library: m = {model.coef_[0]:.4f}, b = {model.intercept_:.4f}")
print(f"library: Epoch {epochs}, Cost: {model.cost_history_[-1]}")
agree = np.isclose(model.coef_[0], m, rtol=1e-9) and np.isclose(model.intercept_, b, rtol=1e-9)
print("they agree to 1e-9" if agree else "they DISAGREE")
if not agree:
    raise SystemExit(1)
