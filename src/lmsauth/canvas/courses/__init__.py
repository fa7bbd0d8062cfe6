"""Courses and enrollments: the context an LTI launch, a roster and a gradebook need."""

# The layout's navigation entry every course page (course, gradebook) highlights.
SECTION = "courses"
