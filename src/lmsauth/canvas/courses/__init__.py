"""Courses and enrollments: the context an LTI launch, a roster and a gradebook need."""
