"""Projects: create, rename, delete (with confirmation), and manage label classes."""
from __future__ import annotations

import streamlit as st

from app import auth, projects
from app.errors import TpodError
from pages.components.common import esc, page_setup, show_error

ctx = page_setup("Projects")
admin = auth.can(ctx.role, "manage")

with st.form("projects.create", clear_on_submit=True):
    st.subheader("New project", anchor=False)
    name = st.text_input("Project name", key="projects.new_name")
    classes = st.text_input("Label classes (comma-separated)", key="projects.new_classes",
                            placeholder="car, person, bicycle")
    if st.form_submit_button("Create project", type="primary"):
        try:
            p = projects.create_project(name, [c for c in classes.split(",") if c.strip()], author=ctx.user)
            st.session_state["project_id"] = p.id
            st.success(f"Created project “{esc(p.name)}” with {len(p.classes)} classes.")
            st.rerun()
        except TpodError as exc:
            show_error(exc)

for project in projects.list_projects():
    with st.expander(f"{esc(project.name)}  ·  {len(project.classes)} classes", expanded=ctx.project is not None
                     and project.id == ctx.project.id):
        st.markdown("**Classes**")
        for cls in project.classes:
            c1, c2, c3, c4 = st.columns([3, 1, 1, 1])
            new_name = c1.text_input("Name", cls.name, key=f"projects.cls_name.{cls.id}", label_visibility="collapsed")
            new_color = c2.color_picker("Colour", cls.color, key=f"projects.cls_color.{cls.id}",
                                        label_visibility="collapsed")
            if c3.button("Save", key=f"projects.cls_save.{cls.id}"):
                try:
                    projects.update_class(cls.id, new_name, new_color)
                    st.rerun()
                except TpodError as exc:
                    show_error(exc)
            if admin and c4.button("Delete", key=f"projects.cls_del.{cls.id}"):
                st.session_state[f"projects.confirm_cls.{cls.id}"] = True
            if st.session_state.get(f"projects.confirm_cls.{cls.id}"):
                st.warning(f"Delete class “{esc(cls.name)}” and all its boxes?")
                y, n = st.columns(2)
                if y.button("Yes, delete", key=f"projects.cls_yes.{cls.id}", type="primary"):
                    try:
                        projects.delete_class(cls.id, force=True)
                    except TpodError as exc:
                        show_error(exc)
                    st.session_state.pop(f"projects.confirm_cls.{cls.id}", None)
                    st.rerun()
                if n.button("Cancel", key=f"projects.cls_no.{cls.id}"):
                    st.session_state.pop(f"projects.confirm_cls.{cls.id}", None)
                    st.rerun()
        a1, a2, a3 = st.columns([3, 1, 1])
        add_name = a1.text_input("Add a class", key=f"projects.add_cls.{project.id}", placeholder="new class name")
        add_color = a2.color_picker("Colour", "#3cb44b", key=f"projects.add_color.{project.id}")
        if a3.button("Add class", key=f"projects.add_btn.{project.id}"):
            try:
                projects.add_class(project.id, add_name, add_color)
                st.rerun()
            except TpodError as exc:
                show_error(exc)

        st.divider()
        r1, r2 = st.columns([3, 1])
        rename = r1.text_input("Rename project", project.name, key=f"projects.rename.{project.id}")
        if r2.button("Rename", key=f"projects.rename_btn.{project.id}"):
            try:
                projects.rename_project(project.id, rename)
                st.rerun()
            except TpodError as exc:
                show_error(exc)
        if admin:
            confirm_key = f"projects.confirm_delete.{project.id}"
            if st.button("Delete project", key=f"projects.delete.{project.id}"):
                st.session_state[confirm_key] = True
            if st.session_state.get(confirm_key):
                st.error(f"Delete “{esc(project.name)}” with all its videos, labels, dataset versions and models? "
                         "This cannot be undone.")
                typed = st.text_input("Type the project name to confirm", key=f"projects.typed.{project.id}")
                if st.button("Delete for good", key=f"projects.delete_yes.{project.id}", type="primary",
                             disabled=typed != project.name):
                    projects.delete_project(project.id)
                    st.session_state.pop(confirm_key, None)
                    st.rerun()
