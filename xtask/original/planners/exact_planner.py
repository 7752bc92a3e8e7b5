import arrow

from chaosmonkey.planners.planner import Planner


class ExactPlanner(Planner):
    """Schedules a single job for a specific date (reconstructed from the documented behaviour)."""

    ref = "exact_planner:ExactPlanner"
    schema = {"type": "object", "properties": {"ref": {"type": "string"}, "args": {"type": "object", "properties": {"date": {"type": "string"}}}}}
    example = {"ref": "exact_planner:ExactPlanner", "args": {"date": "2016-06-21T15:30:00"}}

    def plan(self, planner_config, attack_config):
        date = arrow.get(planner_config["args"]["date"]).datetime.replace(tzinfo=None)
        plan = self.add_plan(self.name)
        self._add_executor(date, self.name, attack_config, plan.id)

    @staticmethod
    def to_dict():
        return Planner._to_dict(ExactPlanner.ref, ExactPlanner.schema, ExactPlanner.example)
