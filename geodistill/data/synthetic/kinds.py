"""Codes shared by the world's rasters and boxes: what a box is (``KIND_*``) and what covers the ground
(``GROUND_*``). A leaf module: the world, its layout and its furniture all read these, none of them owns them."""

KIND_BUILDING, KIND_UNIT, KIND_CAR_BODY, KIND_CAR_CABIN = 1, 2, 3, 4
GROUND_NONE, GROUND_CONCRETE, GROUND_GRASS, GROUND_PLAZA, GROUND_PARKING, GROUND_DIRT = 0, 1, 2, 3, 4, 5
